import ArgumentParser
import Foundation
import NXCBuild
import NXCDeploy
import NXCDeployment
import NXCPipeline
import NXCStore

struct ExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Pack the composition, lock, flavours, built artefacts (with SHA256SUMS), an SBOM and a README into one archive.")

    @Option(name: [.customShort("f"), .customLong("flavour")], help: "Flavour to include (repeatable; default: those in composition.lock).")
    var flavours: [String] = []

    @Option(name: [.customShort("o"), .long], help: "Archive to write, e.g. paper.tar.zst.")
    var output: String

    @Option(help: "A results folder of `nxc collect` (results/RUN) to carry, made with these artefacts (repeatable).")
    var results: [String] = []

    @OptionGroup var scope: BuildScope

    func run() async throws {
        try await reportingErrors {
            let out = output.hasPrefix("/") ? output : FileManager.default.currentDirectoryPath + "/" + output
            let s = try await Export.export(project: scope.project, composition: scope.composition, flavours: flavours, output: out,
                                            store: scope.storeRoot,
                                            tool: "nxc \(Nxc.configuration.version)", results: results, progress: Progress.printer())
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

    @Option(name: .customLong("max-size"),
            help: "Refuse an archive that unpacks to more than this many bytes (suffix K, M, G or T for KiB…TiB; default 64G).")
    var maxSize: String = "64G"

    func validate() throws {
        guard Self.bytes(maxSize) != nil else {
            throw ValidationError("--max-size '\(maxSize)': expected a number of bytes, optionally with K, M, G or T (e.g. 64G)")
        }
    }

    /// "64G" → 64 GiB; plain digits are bytes. Nil for anything else, zero, or an overflow.
    static func bytes(_ text: String) -> Int64? {
        var digits = Substring(text.trimmingCharacters(in: .whitespaces))
        var unit: Int64 = 1
        for suffix in ["iB", "B"] where digits.hasSuffix(suffix) && digits.count > suffix.count { digits = digits.dropLast(suffix.count); break }
        if let last = digits.last, let shift = ["K": 10, "M": 20, "G": 30, "T": 40][last.uppercased()] {
            unit = Int64(1) << Int64(shift)
            digits = digits.dropLast()
        }
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int64(digits), n > 0 else { return nil }
        let (v, overflow) = n.multipliedReportingOverflow(by: unit)
        return overflow ? nil : v
    }

    func run() async throws {
        try await reportingErrors {
            guard FileManager.default.fileExists(atPath: archive) else { throw BuildError.file("read", path: archive, reason: "no such file") }
            let started = Date()
            let work = workdir.map { $0.hasPrefix("/") ? $0 : FileManager.default.currentDirectoryPath + "/" + $0 }
            if let work { try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true) }
            let limits = Export.Limits(totalBytes: Self.bytes(maxSize) ?? Export.Limits.defaultTotalBytes)
            let r = try await Export.verify(archive: archive, store: Store(root: store ?? Store.defaultRoot()),
                                            workDirectory: work, limits: limits, tool: "nxc \(Nxc.configuration.version)",
                                            progress: Progress.printer())
            print("verify: exported by \(r.exportedBy ?? "an nxc that did not record its version"); images rebuilt with "
                  + (r.usedExportedAgent ? "the export's \(Export.agentMember)" : "this nxc's agent"))
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
