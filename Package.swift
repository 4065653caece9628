// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "minihost",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "minihost", targets: ["minihost"]),
        // For the fuzz targets in fuzz/ (a package of their own, built with sanitizers).
        .library(name: "MinihostKit", targets: ["HTTPCore", "Store", "Routes"]),
    ],
    dependencies: [
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        // C lives only in the C* targets, each behind a shim.h.
        .systemLibrary(
            name: "CFastCGI",
            providers: [.apt(["libfcgi-dev"])]
        ),
        .systemLibrary(
            name: "COpenSSL",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]
        ),
        .systemLibrary(
            name: "CCurl",
            pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]
        ),
        // Linux calls that need _GNU_SOURCE, which Swift's Glibc module lacks.
        .target(name: "CLinuxShims"),
        .target(name: "OpenSSLCrypto", dependencies: ["COpenSSL"]),
        .target(name: "HTTPCore"),
        .target(
            name: "FCGIApp",
            dependencies: [
                "CFastCGI", "HTTPCore",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "Store",
            dependencies: [
                "OpenSSLCrypto", "CLinuxShims",
                .product(name: "GRDB", package: "GRDB.swift"),
                // SQLite's own API, for the few reads that skip GRDB's rows
                // (ColumnValues).
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // What operators watch: request, upload and store metrics in
        // Prometheus's text format.
        .target(
            name: "ServerMetrics",
            dependencies: ["HTTPCore", .product(name: "Prometheus", package: "swift-prometheus")]
        ),
        .target(
            name: "Routes",
            dependencies: [
                "HTTPCore", "Store", "OpenSSLCrypto", "ServerMetrics",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Fixtures every dialect's tests use: a temporary store, the whole
        // router in-process, multipart bodies.
        .target(
            name: "MinihostTesting",
            dependencies: ["Routes", "Store", "HTTPCore", "OpenSSLCrypto", .product(name: "Logging", package: "swift-log")]
        ),
        // `minihost push` and `pull`: tus uploads and resumable downloads over libcurl.
        .target(name: "TransferClient", dependencies: ["CCurl", "CLinuxShims", "OpenSSLCrypto"]),
        .executableTarget(
            name: "minihost",
            dependencies: [
                "FCGIApp", "HTTPCore", "Routes", "Store", "ServerMetrics", "OpenSSLCrypto", "CLinuxShims", "TransferClient",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Mustache", package: "swift-mustache"),
            ]
        ),
        .testTarget(name: "OpenSSLCryptoTests", dependencies: ["OpenSSLCrypto"]),
        .testTarget(name: "HTTPCoreTests", dependencies: ["HTTPCore"]),
        .testTarget(name: "StoreTests", dependencies: [
            "Store", "MinihostTesting", "OpenSSLCrypto", "CLinuxShims", .product(name: "GRDB", package: "GRDB.swift"),
        ]),
        .testTarget(name: "RoutesTests", dependencies: ["Routes", "Store", "HTTPCore", "OpenSSLCrypto", "ServerMetrics",
                                                      "MinihostTesting"]),
        .testTarget(name: "TransferClientTests", dependencies: ["TransferClient"]),
    ]
)
