// swift-tools-version:6.2
// SPDX-License-Identifier: Apache-2.0
import PackageDescription

// The embedding example as an application's own package, which depends on Squall by path as it
// would by URL: building it proves Squall's products resolve and build on their own, with none
// of Squall's pins (SwiftPM ignores a dependency's Package.resolved). The root package builds
// the same main.swift as its EmbedExample target, with everything else.
let package = Package(
    name: "embed-example",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "squall", path: "../..")
    ],
    targets: [
        .executableTarget(
            name: "EmbedExample",
            dependencies: [.product(name: "Squall", package: "squall")],
            path: ".",
            sources: ["main.swift"]
        )
    ]
)
