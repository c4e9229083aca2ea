import Foundation
import NXCArchive
import NXCBuild
import NXCComposition
import NXCDeploy
import NXCDeployment
import NXCFlavours
import NXCStore

/// `nxc verify`: an archive from elsewhere, unpacked within limits, checked against its
/// SHA256SUMS, rebuilt and compared. Nothing in it is trusted (docs/security.md).
extension Export {
    public struct Difference: Sendable, CustomStringConvertible {
        public var file: String
        public var message: String
        public var description: String { "\(file): \(message)" }
    }

    public struct VerifyReport: Sendable {
        public var checked: [String]
        public var differences: [Difference]
        public var flavours: [String]
        /// The nxc that made the export, as `tool/VERSION` says (nil: the export does not say).
        public var exportedBy: String?
        /// Whether the images were rebuilt with the agent the export carries (false: with this nxc's).
        public var usedExportedAgent: Bool
        public var ok: Bool { differences.isEmpty }
    }

    /// What `nxc verify` unpacks at most. Nothing in an archive from elsewhere is trusted: not its
    /// sizes, names, member count, nor the files it holds.
    public struct Limits: Sendable {
        /// Bytes of all members together (`--max-size`); also what an artefact may expand to when
        /// a difference inside it is looked for.
        public var totalBytes: Int64
        public var members: Int
        /// Bytes of one member's path; each component at most 255 (NAME_MAX).
        public var pathBytes: Int
        /// SHA256SUMS and tool/VERSION are read into memory: at most this many bytes.
        public var textBytes: Int64

        public static let defaultTotalBytes: Int64 = 64 << 30

        public init(totalBytes: Int64 = Limits.defaultTotalBytes, members: Int = 100_000, pathBytes: Int = 1024,
                    textBytes: Int64 = 16 << 20) {
            self.totalBytes = totalBytes
            self.members = members
            self.pathBytes = pathBytes
            self.textBytes = textBytes
        }
    }

    /// Unpacks the archive, checks its files against SHA256SUMS, rebuilds every flavour from its
    /// composition, lock and flavour files (frozen) with the agent it carries, and compares the
    /// artefacts.
    public static func verify(archive: String, store: Store, workDirectory: String? = nil, keep: Bool = false,
                              limits: Limits = Limits(), tool: String = "nxc",
                              progress: @escaping @Sendable (String) -> Void) async throws -> VerifyReport {
        let work = try workDirectory ?? makeTemporaryDirectory(prefix: "nxc-verify")
        defer { if !keep, workDirectory == nil { try? FileManager.default.removeItem(atPath: work) } }
        progress("verify: unpacking \(archive)")
        let unpacked = try unpack(archive: archive, into: work, limits: limits)
        let top = unpacked.top
        let root = work + "/" + top
        let sums = try readSums(root: root, top: top, archive: archive, present: unpacked.files, limits: limits)
        var differences: [Difference] = []
        // 1. The archive's own files against its SHA256SUMS.
        let listed = Set(sums.map(\.file))
        for s in sums {
            guard unpacked.files.contains(s.file) else {
                differences.append(Difference(file: s.file, message: "listed in SHA256SUMS but missing from the archive"))
                continue
            }
            let got = try sha256(file: root + "/" + s.file)
            if got != s.sha {
                differences.append(Difference(file: s.file, message: "the archive's copy does not match SHA256SUMS (sha256 \(got.prefix(16))…, listed \(s.sha.prefix(16))…): modified after export"))
            }
        }
        for rel in unpacked.files.sorted() where !listed.contains(rel) && !["SHA256SUMS", "README.md", "sbom.cdx.json"].contains(rel) {
            differences.append(Difference(file: rel, message: "in the archive but not in SHA256SUMS"))
        }
        // 2. Which flavours to rebuild: names taken from member paths are checked before any path is made of them.
        var flavours = Set<String>()
        for s in sums {
            let p = s.file.split(separator: "/").map(String.init)
            guard p.count == 3, p[0] == "artefacts" else { continue }
            guard FlavourRules.isName(p[1]) else {
                throw BuildError.badArchive(archive, problem: "\(top)/SHA256SUMS lists artefacts of '\(FlavourRules.printable(p[1]))', "
                                         + "not a flavour name (\(FlavourRules.nameRule)); refusing it")
            }
            flavours.insert(p[1])
        }
        for f in flavours.sorted() where !(listed.contains("flavours/\(f).yaml") && unpacked.files.contains("flavours/\(f).yaml")) {
            throw BuildError.badArchive(archive, problem: "artefacts of flavour '\(f)' but no flavours/\(f).yaml listed in SHA256SUMS; "
                                     + "an export carries the flavour files it was built with")
        }
        // The composition is the top-level YAML file whose lock sits beside it.
        let compositionFile = sums.map(\.file).first { f in
            !f.contains("/") && (f.hasSuffix(".yaml") || f.hasSuffix(".yml")) && listed.contains(LockFile.path(forComposition: f))
        }
        guard let compositionFile else { throw BuildError.badArchive(archive, problem: "no composition file listed in SHA256SUMS") }
        let exportedBy = listed.contains(versionMember) ? try? readText(root + "/" + versionMember, limit: 256)
            .split(separator: "\n").first.map { FlavourRules.printable(String($0)) } : nil
        if let exportedBy, exportedBy != tool {
            progress("verify: exported by \(exportedBy); this is \(tool)")
        }
        let agent = try exportedAgent(root: root, archive: archive, listed: listed, present: unpacked.files)
        if agent == nil {
            progress("verify: the export carries no \(agentMember) (an older nxc made it); rebuilding with this nxc's agent, "
                     + "whose bytes may differ from the one in the exported images")
        }
        // 3. Rebuild each flavour, frozen to the lock, and compare its artefacts.
        let project = Project(directory: root)
        for f in flavours.sorted() {
            progress("verify: rebuilding \(f) from the archive's composition, lock and flavour file")
            // The archive's agent is untrusted bytes: it is only copied into the images
            // (ImagePayload's .fileFromDisk, written by ArchiveWriter.addFile in the ramdisk, docker
            // and tarball kinds); nothing in verify or the build runs it on this machine.
            let b = try await BuildPipeline.build(project: project, composition: compositionFile, flavour: f, mirror: nil,
                                                  lockMode: .frozen, agent: agent, store: store, progress: progress)
            for s in sums where s.file.hasPrefix("artefacts/\(f)/") {
                let name = String(s.file.dropFirst("artefacts/\(f)/".count))
                let rebuilt = b.directory + "/" + name
                guard FileManager.default.fileExists(atPath: rebuilt) else {
                    differences.append(Difference(file: s.file, message: "the rebuild did not produce it"))
                    continue
                }
                let got = try sha256(file: rebuilt)
                if got != s.sha {
                    var msg = "rebuilt sha256 \(got.prefix(16))… differs from the exported \(s.sha.prefix(16))…"
                    let inside = archiveDifferences(exported: root + "/" + s.file, rebuilt: rebuilt, limits: limits)
                    if !inside.isEmpty { msg += "; inside: " + inside.joined(separator: "; ") }
                    differences.append(Difference(file: s.file, message: msg))
                }
            }
            let produced = (try? FileManager.default.contentsOfDirectory(atPath: b.directory)) ?? []
            for n in produced.sorted() where !listed.contains("artefacts/\(f)/\(n)") {
                differences.append(Difference(file: "artefacts/\(f)/\(n)", message: "the rebuild produced it, the export does not have it"))
            }
        }
        // 4. The results of runs it carries: against their manifests and the exported artefacts.
        differences += verifyResults(root: root, sums: sums.map { ($0.file, $0.sha) }, limits: limits, progress: progress)
        return VerifyReport(checked: sums.map(\.file), differences: differences, flavours: flavours.sorted(),
                            exportedBy: exportedBy, usedExportedAgent: agent != nil)
    }
}
