import ArgumentParser
import Foundation
import NXCBuild
import NXCDeploy
import NXCStore

struct ExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Pack the composition, lock, flavours, built artefacts (with SHA256SUMS), an SBOM and a README into one archive.")

    @Option(name: [.customShort("f"), .customLong("flavour")], help: "Flavour to include (repeatable; default: those in composition.lock).")
    var flavours: [String] = []

    @Option(name: [.customShort("o"), .long], help: "Archive to write, e.g. paper.tar.zst.")
    var output: String

    @OptionGroup var scope: BuildScope

    func run() async throws {
        try await reportingErrors {
            let out = output.hasPrefix("/") ? output : FileManager.default.currentDirectoryPath + "/" + output
            let s = try await Export.export(project: scope.project, composition: scope.composition, flavours: flavours, output: out,
                                            store: scope.storeRoot,
                                            tool: "nxc \(Nxc.configuration.version)", progress: Progress.printer())
            print("wrote \(output): \(formatSize(s.bytes)), flavours \(s.flavours.joined(separator: ", ")), "
                  + "\(s.artefacts) artefact files, \(s.packages) packages in the SBOM")
        }
    }
}

struct Verify: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Rebuild an export from its composition, lock and flavours and compare every artefact's SHA-256.")

    @Argument(help: "Archive written by `nxc export`.")
    var archive: String

    @Option(help: "Store folder (default: $NXC_STORE, $XDG_CACHE_HOME/nxc or ~/.cache/nxc; an empty folder rebuilds everything).")
    var store: String?

    @Option(help: "Unpack and rebuild in this folder and keep it (default: a temporary folder, removed).")
    var workdir: String?

    func run() async throws {
        try await reportingErrors {
            guard FileManager.default.fileExists(atPath: archive) else { throw BuildError.invalid("\(archive): no such file") }
            let started = Date()
            var work = workdir
            if let w = workdir {
                work = w.hasPrefix("/") ? w : FileManager.default.currentDirectoryPath + "/" + w
                try FileManager.default.createDirectory(atPath: work!, withIntermediateDirectories: true)
            }
            let r = try await Export.verify(archive: archive, store: Store(root: store ?? Store.defaultRoot()),
                                            workDirectory: work, progress: Progress.printer())
            let bad = Set(r.differences.map(\.file))
            for f in r.checked where !bad.contains(f) { print("  ok        \(f)") }
            for d in r.differences { print("  DIFFERS   \(d.file): \(d.message)") }
            let t = String(format: "%.1f", Date().timeIntervalSince(started))
            if r.ok {
                print("verify: OK, \(r.checked.count) files match SHA256SUMS, flavours \(r.flavours.joined(separator: ", ")) rebuilt identical (\(t) s)")
            } else {
                print("verify: FAILED, \(r.differences.count) of \(r.checked.count) files differ (\(t) s)")
                throw ExitCode(1)
            }
        }
    }
}
