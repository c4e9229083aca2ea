import ArgumentParser
import Foundation
import NXCDeploy
import NXCDeployment

struct Cp: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Copy files to or from the nodes: TARGET:PATH is on a node, or on every node of a role.",
        discussion: """
            nxc cp ./input server:/srv            copies ./input into /srv on server (made if missing)
            nxc cp ./input client:/srv            the same on every client node, in parallel
            nxc cp client:/var/log/app out        /var/log/app of each client node into out/NODE/ (a role: a folder per node)
            nxc cp server:/etc/hosts out          a single node: straight into out/
            Folders are copied whole, as tar streams over the flavour's own channel to the node (SSH, docker exec,
            nsenter). A local path with a colon is written ./a:b.
            """)

    @OptionGroup var options: ProjectOptions

    @Option(help: "Composition name of the deployment (default: the last one started here).")
    var composition: String?

    @Argument(help: "What to copy: a local path, or TARGET:PATH.")
    var source: String

    @Argument(help: "Where: TARGET:FOLDER, or a local folder.")
    var destination: String

    func run() async throws {
        try await reportingErrors {
            let active = try ActiveDeployment.find(project: options.project, flavour: options.flavour, composition: composition)
            let from = Results.remote(source, in: active.deployment)
            let to = Results.remote(destination, in: active.deployment)
            let failures: [String: String]
            switch (from, to) {
            case (nil, let to?):
                failures = try await Results.copyTo(active, source: source, destination: to)
            case (let from?, nil):
                failures = try await Results.copyFrom(active, source: from, destination: destination)
            case (nil, nil):
                throw DeployError.badInput("\(source) \(destination)", problem: "neither side is on a node: write one as NODE:PATH or ROLE:PATH")
            case (_?, _?):
                throw DeployError.badInput("\(source) \(destination)", problem: "both sides are on nodes: copy through this machine, one side at a time")
            }
            if !failures.isEmpty {
                throw DeployError.failedOn("the copy", failures.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }, unit: "node")
            }
        }
    }
}

struct Collect: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Gather each role's `collect:` paths and each node's journal into results/<run>/, with a manifest.",
        discussion: """
            results/<run>/NODE/… holds the paths the node's role lists under `collect:` (as absolute paths below the
            node's folder) and NODE/journal.txt (journalctl -b). results/<run>/manifest.json gives the SHA-256 and size
            of every file, what each node lacked, the deployment document and the build's manifest (the artefacts'
            hashes). A results folder is never overwritten.
            """)

    @OptionGroup var options: ProjectOptions

    @Option(help: "Composition name of the deployment (default: the last one started here).")
    var composition: String?

    @Option(help: "Name of the run's folder under results/ (default: COMPOSITION-UTCTIME).")
    var name: String?

    func run() async throws {
        try await reportingErrors {
            let active = try ActiveDeployment.find(project: options.project, flavour: options.flavour, composition: composition)
            let c = try await Results.collect(active, project: options.project, name: name, progress: Progress.printer())
            for (node, what) in c.missing.sorted(by: { $0.key < $1.key }) {
                print("\(node): not collected: \(what.joined(separator: "; "))")
            }
            print(String(format: "%@: %d file(s), %.1f MiB; manifest.json lists their SHA-256", c.folder, c.files, Double(c.bytes) / 1_048_576))
        }
    }
}
