import ArgumentParser
import Foundation
import NXCDeploy
import NXCStore

struct Lock: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write composition.lock: the exact Debian packages (versions, .deb SHA-256) of each flavour's images.",
        discussion: """
            Without --update, records the flavours' packages (building their root filesystems when the store \
            does not hold them) and keeps every version already locked. With --update, resolves against the \
            mirror's current versions and prints what changed.
            """)

    @Option(name: [.customShort("f"), .customLong("flavour")], help: "Flavour to lock (repeatable; default: those in the lock, else vm-ramdisk).")
    var flavours: [String] = []

    @Option(name: .customLong("project"), help: "Project folder (default: the current folder).")
    var projectDirectory: String?

    @Flag(help: "Move to the mirror's current versions.")
    var update = false

    @Option(help: "Debian mirror (default: the lock's, else the composition's, else the host's).")
    var mirror: String?

    @Option(help: "Store folder (default: $NXC_STORE, $XDG_CACHE_HOME/nxc or ~/.cache/nxc).")
    var store: String?

    @Argument(help: "Composition file or folder (default: ./composition.yaml).")
    var composition: String?

    func run() async throws {
        try await reportingErrors {
            let project = Project(directory: projectDirectory.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
                                  ?? FileManager.default.currentDirectoryPath)
            let r = try await BuildPipeline.lock(project: project, composition: composition, flavours: flavours, update: update,
                                                 mirror: mirror, store: Store(root: store ?? Store.defaultRoot()),
                                                 progress: Progress.printer())
            let name = relativeToCurrentDirectory(r.path)
            if r.changes.isEmpty {
                print("\(name): up to date (\(r.lock.packages.count) packages, flavours \(r.lock.flavours.keys.sorted().joined(separator: ", ")))")
            } else {
                print("\(name): \(r.lock.packages.count) packages, flavours \(r.lock.flavours.keys.sorted().joined(separator: ", "))")
                for c in r.changes.prefix(40) { print("  " + c) }
                if r.changes.count > 40 { print("  … and \(r.changes.count - 40) more (`git diff \(name)` shows them all)") }
            }
        }
    }
}
