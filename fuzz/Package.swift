// swift-tools-version:6.2
// SPDX-License-Identifier: Apache-2.0
import PackageDescription

// libFuzzer harnesses for Squall's hand-written parsers (Squall's `FuzzTargets`). A package of
// its own so that the fuzzer's instrumentation stays out of Squall's build. `fuzz/run` builds it
// with AddressSanitizer and libFuzzer's coverage everywhere, libFuzzer linked into the harness
// alone, and runs each target for a bounded time; see fuzz/README.md.
let package = Package(
    name: "squall-fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "squall", path: "..")
    ],
    targets: [
        .executableTarget(
            name: "SquallFuzz",
            dependencies: [.product(name: "Squall", package: "squall")],
            // libFuzzer (its `main`) in the harness alone; fuzz/run instruments everything.
            swiftSettings: [.unsafeFlags(["-sanitize=fuzzer,address"])],
            linkerSettings: [.unsafeFlags(["-sanitize=fuzzer,address"])]
        )
    ]
)
