// swift-tools-version:6.2
// SPDX-License-Identifier: Apache-2.0
import PackageDescription

// Squall's micro-benchmarks (ordo-one/benchmark): the hot paths of a message, measured for time,
// CPU and allocations. A package of its own so that the benchmark tool and its malloc
// interposer stay out of Squall's build and CI. Run from the repository root:
//   swift package --package-path benchmarks/micro benchmark
let package = Package(
    name: "squall-micro-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "squall", path: "../.."),
        // The malloc interposer only: the runtime interposer (a default trait on Linux with
        // Swift 6.3) needs a package the mirror does not carry.
        .package(url: "https://github.com/ordo-one/benchmark", exact: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "HotPaths",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "Squall", package: "squall"),
            ],
            path: "Benchmarks/HotPaths",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        )
    ]
)
