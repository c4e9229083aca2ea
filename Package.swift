// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "nxc",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "nxc", targets: ["nxc"]),
        .executable(name: "nxc-agent", targets: ["nxc-agent"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
    ],
    targets: [
        // C libraries from Debian, wrapped once.
        .systemLibrary(name: "CArchive", path: "Sources/CArchive", pkgConfig: "libarchive",
                       providers: [.apt(["libarchive-dev"])]),
        .systemLibrary(name: "CCrypto", path: "Sources/CCrypto", pkgConfig: "libcrypto",
                       providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CJansson", path: "Sources/CJansson", pkgConfig: "jansson",
                       providers: [.apt(["libjansson-dev"])]),

        // names: the rules for names every stage and the agent share (units, suggestions); no Foundation.
        .target(name: "NXCNames"),
        // parse: composition YAML -> validated model with source positions.
        .target(name: "NXCComposition", dependencies: ["NXCNames", .product(name: "Yams", package: "Yams")]),
        // store: content-addressed, atomic entries keyed by input hashes.
        .target(name: "NXCStore", dependencies: ["CCrypto"]),
        // archive: libarchive writers/readers (cpio newc, tar) with zstd/gzip.
        .target(name: "NXCArchive", dependencies: ["CArchive"]),
        // build: root filesystems (mmdebstrap), process running, host facts.
        .target(name: "NXCBuild", dependencies: ["NXCNames", "NXCComposition", "NXCStore", "NXCArchive", .product(name: "Yams", package: "Yams")]),
        // flavours: flavour files and artefact kinds.
        .target(name: "NXCFlavours", dependencies: ["NXCNames", "NXCComposition", "NXCBuild", "NXCStore", "NXCArchive",
                                                    .product(name: "Yams", package: "Yams")]),
        // deployment: the deployment document, nodes bound to roles and hosts (roles files, machine
        // files), what a start keeps (runtime state), the project's folders.
        .target(name: "NXCDeployment", dependencies: ["NXCNames", "NXCComposition", "NXCBuild", .product(name: "Yams", package: "Yams")]),
        // testbed: reserved hosts over SSH (sessions, facts, the per-host report, waiting for SSH).
        .target(name: "NXCTestbed", dependencies: ["NXCDeployment", "NXCBuild"]),
        // deploy: the registry of kinds and methods, the start methods (one folder each), exec, wait,
        // status, stop.
        .target(name: "NXCDeploy", dependencies: ["NXCNames", "NXCComposition", "NXCFlavours", "NXCBuild", "NXCArchive",
                                                  "NXCDeployment", "NXCTestbed", .product(name: "Yams", package: "Yams")]),
        // driver: a composition's test script, run against a deployment (`nxc exec` on its PATH).
        .target(name: "NXCDriver", dependencies: ["NXCDeployment", "NXCBuild"]),
        // pipeline: composition -> root filesystem -> artefacts + the start method's files -> build folder;
        // export and verify of a build as one archive.
        .target(name: "NXCPipeline", dependencies: ["NXCComposition", "NXCStore", "NXCArchive", "NXCBuild", "NXCFlavours", "NXCDeployment", "NXCDeploy"]),
        .executableTarget(name: "nxc", dependencies: [
            "NXCComposition", "NXCStore", "NXCBuild", "NXCFlavours", "NXCDeployment", "NXCDeploy", "NXCPipeline", "NXCDriver",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        // The in-image agent: no Foundation, static Swift runtime, JSON via libjansson.
        .executableTarget(name: "nxc-agent", dependencies: ["CJansson", "NXCNames"],
                          linkerSettings: [.unsafeFlags(["-static-stdlib"])]),

        .testTarget(name: "NXCCompositionTests", dependencies: ["NXCComposition"],
                    resources: [.copy("BadCompositions")]),
        // What several test targets use (the test binary run again as a child, to be killed).
        .target(name: "NXCTestSupport", path: "Tests/NXCTestSupport"),
        .testTarget(name: "NXCStoreTests", dependencies: ["NXCStore", "NXCTestSupport"]),
        .testTarget(name: "NXCNamesTests", dependencies: ["NXCNames"]),
        .testTarget(name: "NXCFlavoursTests", dependencies: ["NXCFlavours", "NXCDeploy", "NXCDeployment"], resources: [.copy("BadFlavours")]),
        .testTarget(name: "NXCArchiveTests", dependencies: ["NXCArchive"]),
        .testTarget(name: "NXCBuildTests", dependencies: ["NXCBuild", "NXCArchive", "NXCComposition"]),
        .testTarget(name: "NXCDeploymentTests", dependencies: ["NXCTestSupport", "NXCDeployment", "NXCComposition", "NXCBuild"]),
        .testTarget(name: "NXCTestbedTests", dependencies: ["NXCTestbed", "NXCDeployment", "NXCBuild"]),
        .testTarget(name: "NXCDeployTests", dependencies: ["NXCTestSupport", "NXCDeploy", "NXCDeployment", "NXCTestbed", "NXCComposition", "NXCFlavours", "NXCBuild", "NXCStore", "NXCArchive", "NXCPipeline"]),
        .testTarget(name: "NXCDriverTests", dependencies: ["NXCDriver", "NXCDeployment"]),
        .testTarget(name: "NXCPipelineTests", dependencies: ["NXCTestSupport", "NXCPipeline", "NXCDeploy", "NXCDeployment", "NXCComposition", "NXCFlavours", "NXCBuild", "NXCStore", "NXCArchive"]),
        .testTarget(name: "EndToEndTests", dependencies: ["NXCDeploy", "NXCDeployment", "NXCTestbed", "NXCPipeline", "NXCBuild", "NXCArchive", "NXCStore"]),
    ],
    swiftLanguageModes: [.v6]
)
