// swift-tools-version:6.0
// libFuzzer targets for minihost's parsers and router. Built and run by
// `make fuzz` (see fuzz/README.md) with -sanitize=fuzzer,address; a plain
// `swift build` of the main package never builds them.
import PackageDescription

let fuzzTarget = { (name: String) -> Target in
    .executableTarget(
        name: name,
        dependencies: ["FuzzSupport", .product(name: "MinihostKit", package: "main")],
        swiftSettings: [.unsafeFlags(["-parse-as-library"])]
    )
}

let package = Package(
    name: "minihost-fuzz",
    dependencies: [.package(name: "main", path: "..")],
    targets: [
        .target(name: "FuzzSupport", dependencies: [.product(name: "MinihostKit", package: "main")]),
        fuzzTarget("FuzzMultipart"),
        fuzzTarget("FuzzForms"),
        fuzzTarget("FuzzJSONBody"),
        fuzzTarget("FuzzRouter"),
    ]
)
