import ArgumentParser
import Foundation
import NXCComposition
import NXCDeploy
import NXCDeployment
import NXCPipeline
import NXCStore

struct Lock: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write composition.lock: the exact Debian packages (versions, .deb SHA-256) of each flavour's images.",
        discussion: """
            Without --update, records the flavours' packages (building their root filesystems when the store \
            does not hold them) and keeps every version already locked. With --update, resolves against the \
            mirror's current versions and prints what changed.
            """)

    @Option(name: [.customShort("f"), .customLong("flavour")], help: "Flavour to lock (repeatable; default: those in the lock, else the default flavour).")
    var flavours: [String] = []

    @Flag(help: "Move to the mirror's current versions.")
    var update = false

    @Option(help: "Debian mirror (default: the lock's, else the composition's, else the host's).")
    var mirror: String?

    @OptionGroup var scope: BuildScope

    func validate() throws { try validateMirror(mirror) }

    func run() async throws {
        try await reportingErrors {
            let r = try await BuildPipeline.lock(project: scope.project, composition: scope.composition, flavours: flavours,
                                                 update: update, mirror: mirror, store: scope.storeRoot,
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
