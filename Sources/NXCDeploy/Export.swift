import Foundation
import NXCArchive
import NXCBuild
import NXCComposition
import NXCFlavours
import NXCStore

/// `nxc export`: one archive a paper can point to. It holds the composition (and the files its
/// roles read), the lock, the flavour files, the built artefacts with a SHA256SUMS file, an SBOM
/// of every package (CycloneDX JSON) and a README. `nxc verify` rebuilds from it and compares.
public enum Export {
    public struct Summary: Sendable {
        public var path: String
        public var bytes: Int64
        public var flavours: [String]
        public var artefacts: Int
        public var packages: Int
    }

    /// Builds the flavours (nothing to do when the build folders are current) and writes the archive.
    public static func export(project: Project, composition path: String?, flavours requested: [String], output: String,
                              store: Store, tool: String,
                              progress: @escaping @Sendable (String) -> Void) async throws -> Summary {
        let compositionFile = project.compositionFile(path)
        let lockPath = LockFile.path(forComposition: compositionFile)
        var flavours = requested
        if flavours.isEmpty { flavours = (try LockFile.load(path: lockPath)).map { $0.flavours.keys.sorted() } ?? [] }
        if flavours.isEmpty {
            throw BuildError.invalid("which flavours? give -f FLAVOUR (repeatable); \(lockPath) does not exist yet")
        }
        var builds: [BuildResult] = []
        for f in flavours {
            progress("export: building \(f) (from the store when nothing changed)")
            builds.append(try await BuildPipeline.build(project: project, composition: path, flavour: f, mirror: nil,
                                                        store: store, progress: progress))
        }
        guard let lock = try LockFile.load(path: lockPath) else { throw LockError(file: lockPath, "missing after the build") }
        let composition = builds[0].composition
        let compositionDir = (compositionFile as NSString).deletingLastPathComponent

        let name = archiveName(output)
        // name inside the archive → file on disk
        var files: [(member: String, source: String, mode: UInt32)] = []
        files.append(((compositionFile as NSString).lastPathComponent, compositionFile, 0o644))
        files.append(((lockPath as NSString).lastPathComponent, lockPath, 0o644))
        var sources = Set<String>()
        for role in composition.roles {
            for f in role.files {
                guard let src = f.source else { continue }
                guard !src.hasPrefix("/"), !src.split(separator: "/").contains("..") else {
                    throw CompositionError(file: compositionFile, location: f.location, key: "roles.\(role.name).files",
                                           "source '\(src)' is outside the composition's folder; an export needs it inside (a relative path)")
                }
                if sources.insert(src).inserted { files.append((src, compositionDir + "/" + src, 0o644)) }
            }
        }
        for b in builds {
            files.append(("flavours/\(b.flavour.name).yaml", b.flavour.file, 0o644))
            let names = try FileManager.default.contentsOfDirectory(atPath: b.directory).sorted()
            for n in names {
                let p = b.directory + "/" + n
                var st = stat()
                guard lstat(p, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { continue }
                files.append(("artefacts/\(b.flavour.name)/\(n)", p, (st.st_mode & 0o111) != 0 ? 0o755 : 0o644))
            }
        }
        var sums = ""
        for f in files { sums += "\(try sha256(file: f.source))  \(f.member)\n" }
        let sbom = try SBOM.cycloneDX(composition: composition.name, lock: lock, tool: tool)
        let readme = Self.readme(name: name, tool: tool, composition: composition.name,
                                 compositionFile: (compositionFile as NSString).lastPathComponent,
                                 flavours: builds.map(\.flavour), lock: lock)

        let tmp = output + ".tmp-\(getpid())"
        do {
            // Fixed times and owners, sorted members: the same inputs give the same archive.
            let w = try ArchiveWriter(path: tmp, format: .pax, filter: .zstd(level: 3), mtime: lock.sourceDateEpoch)
            var dirs = Set<String>()
            func parents(_ member: String) throws {
                var acc = name
                for part in member.split(separator: "/").dropLast() {
                    acc += "/" + part
                    if dirs.insert(acc).inserted { try w.addDirectory(acc) }
                }
            }
            try w.addDirectory(name)
            try w.addFile("\(name)/README.md", bytes: Array(readme.utf8))
            try w.addFile("\(name)/SHA256SUMS", bytes: Array(sums.utf8))
            try w.addFile("\(name)/sbom.cdx.json", bytes: sbom)
            for f in files.sorted(by: { $0.member < $1.member }) {
                try parents(f.member)
                try w.addFile("\(name)/\(f.member)", contentsOf: f.source, mode: f.mode)
            }
            try w.finish()
            guard rename(tmp, output) == 0 else { throw BuildError.invalid("cannot write \(output): \(String(cString: strerror(errno)))") }
        } catch {
            try? FileManager.default.removeItem(atPath: tmp)
            throw error
        }
        let size = ((try? FileManager.default.attributesOfItem(atPath: output))?[.size] as? Int64) ?? 0
        return Summary(path: output, bytes: size, flavours: builds.map(\.flavour.name),
                       artefacts: files.filter { $0.member.hasPrefix("artefacts/") }.count, packages: lock.packages.count)
    }

    /// `paper.tar.zst` → `paper`.
    static func archiveName(_ output: String) -> String {
        var n = (output as NSString).lastPathComponent
        for ext in [".tar.zst", ".tzst", ".tar"] where n.hasSuffix(ext) { n = String(n.dropLast(ext.count)) }
        return n.isEmpty ? "export" : n
    }

    static func readme(name: String, tool: String, composition: String, compositionFile: String, flavours: [Flavour], lock: LockFile) -> String {
        let date = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: TimeInterval(lock.sourceDateEpoch)))
        var out = """
            # \(composition): reproducible environment (nxc export)

            This archive holds everything needed to rebuild and redeploy the environment of
            composition `\(composition)` with nxc, and the artefacts built from it. It was written by
            \(tool); the agent inside every image comes from that nxc, so verify with the same version.

            | file | what it is |
            |------|------------|
            | `\(compositionFile)` | the composition: roles, packages, services, files |
            | `composition.lock` | the exact Debian packages (version and .deb SHA-256) of every image, the mirror, SOURCE_DATE_EPOCH |
            | `flavours/` | the flavour definitions the artefacts were built with |
            | `artefacts/<flavour>/` | the built artefacts, as `nxc build` left them |
            | `SHA256SUMS` | SHA-256 of every file above |
            | `sbom.cdx.json` | the software bill of materials (CycloneDX 1.5): every package of every image |

            Packages: \(lock.packages.count) from \(lock.mirror) (\(lock.suite), \(lock.architecture)),
            resolved \(lock.mirrorDate ?? "at lock time"); SOURCE_DATE_EPOCH \(lock.sourceDateEpoch) (\(date)).

            ## Check it

                nxc verify \(name).tar.zst

            rebuilds every artefact from the composition, lock and flavours in this archive and compares
            its SHA-256 with `SHA256SUMS`; it names every file that differs. If the mirror no longer has
            the locked versions, point `mirror:` in `composition.lock` to a snapshot of the Debian archive:
            \(lock.snapshotMirror)

            ## Rebuild and redeploy

                tar --zstd -xf \(name).tar.zst && cd \(name)

            """
        for f in flavours {
            out += "\n### \(f.name)\n\n    nxc build -f \(f.name) --frozen\n"
            switch f.start {
            case .qemu: out += "    nxc start -f \(f.name)                  # VMs on this machine\n"
            case .kexec: out += "    nxc start -f \(f.name) -m $OAR_NODEFILE  # reserved hosts (kexec)\n"
            case .docker: out += "    nxc start -f \(f.name)                  # containers on this machine's Docker engine\n"
            case .kadeploy: out += "    nxc start -f \(f.name) -m $OAR_NODEFILE  # reserved hosts (Kadeploy)\n"
            }
            out += "    nxc driver -f \(f.name)                 # runs the composition's test\n    nxc stop\n"
        }
        out += "\n`--frozen` installs exactly the locked packages and fails rather than add one.\n"
        return out
    }

    // MARK: verify

    public struct Difference: Sendable, CustomStringConvertible {
        public var file: String
        public var message: String
        public var description: String { "\(file): \(message)" }
    }

    public struct VerifyReport: Sendable {
        public var checked: [String]
        public var differences: [Difference]
        public var flavours: [String]
        public var ok: Bool { differences.isEmpty }
    }

    /// Unpacks the archive, checks its files against SHA256SUMS, rebuilds every flavour from its
    /// composition, lock and flavour files (frozen) and compares the artefacts.
    public static func verify(archive: String, store: Store, workDirectory: String? = nil, keep: Bool = false,
                              progress: @escaping @Sendable (String) -> Void) async throws -> VerifyReport {
        let work = try workDirectory ?? makeTemporaryDirectory(prefix: "nxc-verify")
        defer { if !keep, workDirectory == nil { try? FileManager.default.removeItem(atPath: work) } }
        progress("verify: unpacking \(archive)")
        let entries = try ArchiveReader.entries(path: archive)
        var top: String?
        for e in entries {
            let parts = e.path.split(separator: "/", omittingEmptySubsequences: true)
            guard !e.path.hasPrefix("/"), !parts.contains(".."), let first = parts.first else {
                throw BuildError.invalid("\(archive): member '\(e.path)' escapes the archive's folder; refusing it")
            }
            if top == nil { top = String(first) }
            guard top == String(first) else { throw BuildError.invalid("\(archive): members in more than one top folder (\(top!), \(first))") }
            let dest = work + "/" + parts.joined(separator: "/")
            switch e.kind {
            case .directory: try FileManager.default.createDirectory(atPath: dest, withIntermediateDirectories: true)
            case .file:
                try FileManager.default.createDirectory(atPath: (dest as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                guard FileManager.default.createFile(atPath: dest, contents: Data(e.data), attributes: [.posixPermissions: Int(e.mode & 0o777)]) else {
                    throw BuildError.invalid("cannot write \(dest)")
                }
            default:
                throw BuildError.invalid("\(archive): member '\(e.path)' is not a file or folder; an export has none")
            }
        }
        guard let top else { throw BuildError.invalid("\(archive): empty archive") }
        let root = work + "/" + top
        guard let sumsText = try? String(contentsOfFile: root + "/SHA256SUMS", encoding: .utf8) else {
            throw BuildError.invalid("\(archive): no SHA256SUMS in \(top)/; not an nxc export")
        }
        var sums: [(file: String, sha: String)] = []
        for (i, line) in sumsText.split(separator: "\n").enumerated() {
            let parts = line.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, parts[0].count == 64 else {
                throw BuildError.invalid("\(top)/SHA256SUMS:\(i + 1): expected 'SHA256  FILE'")
            }
            sums.append((parts[1].trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "*", with: ""), String(parts[0])))
        }
        var differences: [Difference] = []
        // 1. The archive's own files against its SHA256SUMS.
        let listed = Set(sums.map(\.file))
        for s in sums {
            let p = root + "/" + s.file
            guard FileManager.default.fileExists(atPath: p) else {
                differences.append(Difference(file: s.file, message: "listed in SHA256SUMS but missing from the archive"))
                continue
            }
            let got = try sha256(file: p)
            if got != s.sha {
                differences.append(Difference(file: s.file, message: "the archive's copy does not match SHA256SUMS (sha256 \(got.prefix(16))…, listed \(s.sha.prefix(16))…): modified after export"))
            }
        }
        for e in entries where e.kind == .file {
            let rel = e.path.split(separator: "/").dropFirst().joined(separator: "/")
            if !listed.contains(rel), !["SHA256SUMS", "README.md", "sbom.cdx.json"].contains(rel) {
                differences.append(Difference(file: rel, message: "in the archive but not in SHA256SUMS"))
            }
        }
        // 2. Rebuild each flavour, frozen to the lock, and compare its artefacts.
        let flavours = Set(sums.compactMap { s -> String? in
            let p = s.file.split(separator: "/")
            return p.count == 3 && p[0] == "artefacts" ? String(p[1]) : nil
        }).sorted()
        // The composition is the top-level YAML file whose lock sits beside it.
        let compositionFile = sums.map(\.file).first { f in
            !f.contains("/") && (f.hasSuffix(".yaml") || f.hasSuffix(".yml")) && listed.contains(LockFile.path(forComposition: f))
        }
        guard let compositionFile else { throw BuildError.invalid("\(archive): no composition file listed in SHA256SUMS") }
        let project = Project(directory: root)
        for f in flavours {
            progress("verify: rebuilding \(f) from the archive's composition, lock and flavour file")
            let b = try await BuildPipeline.build(project: project, composition: compositionFile, flavour: f, mirror: nil,
                                                  lockMode: .frozen, store: store, progress: progress)
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
                    let inside = archiveDifferences(exported: root + "/" + s.file, rebuilt: rebuilt)
                    if !inside.isEmpty { msg += "; inside: " + inside.joined(separator: "; ") }
                    differences.append(Difference(file: s.file, message: msg))
                }
            }
            let produced = (try? FileManager.default.contentsOfDirectory(atPath: b.directory)) ?? []
            for n in produced.sorted() where !listed.contains("artefacts/\(f)/\(n)") {
                differences.append(Difference(file: "artefacts/\(f)/\(n)", message: "the rebuild produced it, the export does not have it"))
            }
        }
        return VerifyReport(checked: sums.map(\.file), differences: differences, flavours: flavours)
    }

    /// For two archives (tar, cpio, any compression) that differ: which members differ, at most 10.
    static func archiveDifferences(exported: String, rebuilt: String) -> [String] {
        guard let a = try? ArchiveReader.entries(path: exported), let b = try? ArchiveReader.entries(path: rebuilt),
              a.count > 1 || b.count > 1 else { return [] }
        let ma = Dictionary(a.map { ($0.path, $0) }, uniquingKeysWith: { x, _ in x })
        let mb = Dictionary(b.map { ($0.path, $0) }, uniquingKeysWith: { x, _ in x })
        var out: [String] = []
        for p in Set(ma.keys).union(mb.keys).sorted() {
            switch (ma[p], mb[p]) {
            case (nil, _?): out.append("\(p) only in the rebuild")
            case (_?, nil): out.append("\(p) only in the export")
            case (let x?, let y?) where x != y:
                var what: [String] = []
                if x.data != y.data { what.append("content") }
                if x.mode != y.mode { what.append("mode") }
                if x.uid != y.uid || x.gid != y.gid { what.append("owner") }
                if x.mtime != y.mtime { what.append("time") }
                if x.linkTarget != y.linkTarget { what.append("link") }
                if x.xattrs != y.xattrs { what.append("xattrs") }
                out.append("\(p) (\(what.joined(separator: ", ")))")
            default: break
            }
        }
        if out.count > 10 { out = Array(out.prefix(10)) + ["… \(out.count - 10) more members"] }
        return out
    }

    static func makeTemporaryDirectory(prefix: String) throws -> String {
        var template = Array((NSTemporaryDirectory() + "/\(prefix)-XXXXXX").utf8CString)
        guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
            throw BuildError.invalid("cannot create a temporary folder: \(String(cString: strerror(errno)))")
        }
        return template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }
}

/// Software bill of materials from a lock.
public enum SBOM {
    struct Document: Encodable {
        var bomFormat = "CycloneDX"
        var specVersion = "1.5"
        var serialNumber: String
        var version = 1
        var metadata: Metadata
        var components: [Component]
    }
    struct Metadata: Encodable {
        var timestamp: String
        var tools: Tools
        var component: Component
    }
    struct Tools: Encodable { var components: [Component] }
    struct Component: Encodable {
        var type: String
        var bomRef: String?
        var name: String
        var version: String?
        var purl: String?
        var hashes: [Hash]?
        var properties: [Property]?
        enum CodingKeys: String, CodingKey {
            case type, bomRef = "bom-ref", name, version, purl, hashes, properties
        }
    }
    struct Hash: Encodable { var alg: String; var content: String }
    struct Property: Encodable { var name: String; var value: String }

    /// CycloneDX 1.5 JSON: one component per package (purl `pkg:deb/debian/…`, .deb SHA-256, the
    /// flavours whose images hold it). The serial number derives from the lock, the timestamp is
    /// SOURCE_DATE_EPOCH: the same lock gives the same bytes.
    public static func cycloneDX(composition: String, lock: LockFile, tool: String = "nxc") throws -> [UInt8] {
        var users: [String: [String]] = [:]
        for (f, names) in lock.flavours { for n in names { users[n, default: []].append(f) } }
        let distro = "debian-\(lock.suite)"
        let components = lock.packages.keys.sorted().map { n -> Component in
            let p = lock.packages[n]!
            let purl = "pkg:deb/debian/\(n)@\(percentEncoded(p.version))?arch=\(p.architecture)&distro=\(distro)"
            return Component(type: "library", bomRef: purl, name: n, version: p.version, purl: purl,
                             hashes: [Hash(alg: "SHA-256", content: p.sha256)],
                             properties: [Property(name: "nxc:flavours", value: (users[n] ?? []).sorted().joined(separator: ","))])
        }
        let lockBytes = Array(lock.render(composition: composition).utf8)
        let h = Array(sha256(bytes: lockBytes).prefix(32))
        // An RFC 4122 form (version 5-like, name-based) so that the serial is stable for a lock.
        var hex = h
        hex[12] = "5"
        let variants: [Character] = ["8", "9", "a", "b"]
        hex[16] = variants[Int(String(hex[16]), radix: 16)! % 4]
        let s = String(hex)
        let uuid = "\(s.prefix(8))-\(s.dropFirst(8).prefix(4))-\(s.dropFirst(12).prefix(4))-\(s.dropFirst(16).prefix(4))-\(s.dropFirst(20))"
        let f = ISO8601DateFormatter()
        let doc = Document(serialNumber: "urn:uuid:\(uuid)",
                           metadata: Metadata(timestamp: f.string(from: Date(timeIntervalSince1970: TimeInterval(lock.sourceDateEpoch))),
                                              tools: Tools(components: [Component(type: "application", name: "nxc",
                                                                                            version: tool.split(separator: " ").last.map(String.init))]),
                                              component: Component(type: "application", bomRef: "composition:\(composition)",
                                                                   name: composition,
                                                                   properties: [Property(name: "nxc:mirror", value: lock.mirror),
                                                                                Property(name: "nxc:suite", value: lock.suite)])),
                           components: components)
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return Array(try enc.encode(doc))
    }

    /// Percent-encoding of a purl version (`1:2.3+b1` → `1%3A2.3%2Bb1`).
    static func percentEncoded(_ s: String) -> String {
        var out = ""
        for b in s.utf8 {
            let c = Character(UnicodeScalar(b))
            if c.isASCII && (c.isLetter || c.isNumber || "-._~".contains(c)) { out.append(c) }
            else { out += String(format: "%%%02X", b) }
        }
        return out
    }
}
