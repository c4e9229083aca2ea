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

    /// Where the tool that made an export is recorded inside it: its version, and the agent
    /// binary that went into every image (verify rebuilds with that one).
    public static let versionMember = "tool/VERSION"
    public static let agentMember = "tool/nxc-agent"
    /// An agent binary larger than this in an archive is refused (nxc's own is about 6 MiB).
    public static let agentMaxBytes: Int64 = 64 << 20

    /// Builds the flavours (nothing to do when the build folders are current) and writes the archive.
    /// `tool` is nxc's name and version ("nxc 0.1.0"); `agent` the agent binary to build with and
    /// ship (default: the one beside nxc).
    public static func export(project: Project, composition path: String?, flavours requested: [String], output: String,
                              store: Store, tool: String, agent: String? = nil,
                              progress: @escaping @Sendable (String) -> Void) async throws -> Summary {
        guard let agent = agent ?? DataFiles.agentBinary() else {
            throw BuildError.invalid("the nxc-agent binary was not found beside nxc; build it (`make`) or set NXC_AGENT")
        }
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
                                                        agent: agent, store: store, progress: progress))
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
        // The agent that went into the images travels with them: a verifier whose nxc was built
        // differently (another compiler, an unstripped agent) still rebuilds the same bytes.
        files.append((agentMember, agent, 0o755))
        let version = Array("\(tool)\n".utf8)
        var sums = ""
        for f in files { sums += "\(try sha256(file: f.source))  \(f.member)\n" }
        sums += "\(sha256(bytes: version))  \(versionMember)\n"
        let agentSHA = try sha256(file: agent)
        let sbom = try SBOM.cycloneDX(composition: composition.name, lock: lock, tool: tool)
        let readme = Self.readme(name: name, tool: tool, agentSHA256: agentSHA, composition: composition.name,
                                 compositionFile: (compositionFile as NSString).lastPathComponent,
                                 flavours: builds.map(\.flavour), lock: lock)

        let outDir = (output as NSString).deletingLastPathComponent.isEmpty ? "." : (output as NSString).deletingLastPathComponent
        let outName = (output as NSString).lastPathComponent
        Leftovers.collect(in: outDir, name: outName)
        let tmp = "\(outDir)/.\(outName).tmp-\(getpid())"
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
            let members: [(member: String, source: String?, mode: UInt32)] =
                files.map { ($0.member, $0.source, $0.mode) } + [(versionMember, nil, 0o644)]
            for f in members.sorted(by: { $0.member < $1.member }) {
                try parents(f.member)
                if let source = f.source {
                    try w.addFile("\(name)/\(f.member)", contentsOf: source, mode: f.mode)
                } else {
                    try w.addFile("\(name)/\(f.member)", bytes: version, mode: f.mode)
                }
            }
            try w.finish()
            try Durable.sync(tmp)
            guard rename(tmp, output) == 0 else { throw BuildError.invalid("cannot write \(output): \(String(cString: strerror(errno)))") }
            try Durable.sync(outDir)
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

    static func readme(name: String, tool: String, agentSHA256: String, composition: String, compositionFile: String,
                       flavours: [Flavour], lock: LockFile) -> String {
        let date = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: TimeInterval(lock.sourceDateEpoch)))
        var out = """
            # \(composition): reproducible environment (nxc export)

            This archive holds everything needed to rebuild and redeploy the environment of
            composition `\(composition)` with nxc, and the artefacts built from it. It was written by
            \(tool) (`tool/VERSION`). The agent inside every image is `tool/nxc-agent`
            (sha256 \(agentSHA256)); `nxc verify` builds with that copy, so a verifier's own
            nxc-agent need not be byte-identical, but the rest of nxc should be the same version.

            | file | what it is |
            |------|------------|
            | `\(compositionFile)` | the composition: roles, packages, services, files |
            | `composition.lock` | the exact Debian packages (version and .deb SHA-256) of every image, the mirror, SOURCE_DATE_EPOCH |
            | `flavours/` | the flavour definitions the artefacts were built with |
            | `artefacts/<flavour>/` | the built artefacts, as `nxc build` left them |
            | `tool/VERSION`, `tool/nxc-agent` | the nxc that made it, and the agent binary in its images |
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
            let method = f.start.implementation
            out += "    nxc start -f \(f.name)" + (method.bindsHosts ? " -m $OAR_NODEFILE" : String(repeating: " ", count: 17))
                + "  # \(method.summary)\n"
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
                throw BuildError.invalid("\(archive): \(top)/SHA256SUMS lists artefacts of '\(FlavourRules.printable(p[1]))', "
                                         + "not a flavour name (\(FlavourRules.nameRule)); refusing it")
            }
            flavours.insert(p[1])
        }
        for f in flavours.sorted() where !(listed.contains("flavours/\(f).yaml") && unpacked.files.contains("flavours/\(f).yaml")) {
            throw BuildError.invalid("\(archive): artefacts of flavour '\(f)' but no flavours/\(f).yaml listed in SHA256SUMS; "
                                     + "an export carries the flavour files it was built with")
        }
        // The composition is the top-level YAML file whose lock sits beside it.
        let compositionFile = sums.map(\.file).first { f in
            !f.contains("/") && (f.hasSuffix(".yaml") || f.hasSuffix(".yml")) && listed.contains(LockFile.path(forComposition: f))
        }
        guard let compositionFile else { throw BuildError.invalid("\(archive): no composition file listed in SHA256SUMS") }
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
        return VerifyReport(checked: sums.map(\.file), differences: differences, flavours: flavours.sorted(),
                            exportedBy: exportedBy, usedExportedAgent: agent != nil)
    }

    /// Streams the archive's members to files under `work`, checking each before anything is
    /// written: its path (relative, no `..`, no control characters, bounded length, one top folder),
    /// its type (regular files and folders only: no links, devices or hard links), the member count,
    /// and the bytes written so far against `limits.totalBytes` (the header's size first, then the
    /// bytes as they come). Returns the top folder and the files under it.
    static func unpack(archive: String, into work: String, limits: Limits) throws -> (top: String, files: Set<String>) {
        func refuse(_ why: String) -> BuildError { .invalid("\(archive): \(why); refusing it") }
        let stream = try ArchiveStream(path: archive, accepting: .tar)
        var top: String?
        var files = Set<String>()
        var members = 0
        var total: Int64 = 0
        while let e = try stream.next() {
            members += 1
            guard members <= limits.members else { throw refuse("more than \(limits.members) members") }
            let shown = FlavourRules.printable(e.path)
            let parts = try memberPath(e.path, limits: limits, refuse: { refuse("member '\(shown)' \($0)") })
            if top == nil {
                var st = stat()
                guard lstat(work + "/" + parts[0], &st) != 0 else {
                    throw BuildError.invalid("\(work)/\(parts[0]) exists; verify unpacks into a folder of its own (remove it or give another --workdir)")
                }
                top = parts[0]
            }
            guard parts[0] == top else { throw refuse("members in more than one top folder ('\(top ?? "")', '\(parts[0])')") }
            var dir = work
            for p in parts.dropLast() {
                dir += "/" + p
                // Only files and folders are ever made here, so what is there is a folder or a file.
                if mkdir(dir, 0o755) != 0 && errno != EEXIST { throw BuildError.invalid("cannot create \(dir): \(String(cString: strerror(errno)))") }
            }
            let dest = dir + "/" + (parts.last ?? "")
            switch e.kind {
            case .directory where e.hardlinkTarget == nil:
                var st = stat()
                if mkdir(dest, 0o755) != 0 && !(errno == EEXIST && lstat(dest, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR) {
                    throw errno == EEXIST ? refuse("member '\(shown)' is both a file and a folder")
                        : BuildError.invalid("cannot create \(dest): \(String(cString: strerror(errno)))")
                }
            case .file where e.hardlinkTarget == nil:
                guard parts.count > 1 else { throw refuse("member '\(shown)' is a file outside the top folder") }
                func tooBig() -> BuildError {
                    .invalid("\(archive): unpacks to more than \(limits.totalBytes) bytes (--max-size) at member '\(shown)'; refusing it")
                }
                if let size = e.size, size < 0 || size > limits.totalBytes - total { throw tooBig() }
                let fd = open(dest, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode_t(0o600))
                guard fd >= 0 else {
                    throw errno == EEXIST ? refuse("member '\(shown)' appears twice (or is both a file and a folder)")
                        : BuildError.invalid("cannot write \(dest): \(String(cString: strerror(errno)))")
                }
                defer { close(fd) }
                try stream.readData { chunk in
                    guard Int64(chunk.count) <= limits.totalBytes - total else { throw tooBig() }
                    total += Int64(chunk.count)
                    guard let base = chunk.baseAddress else { return }
                    var off = 0
                    while off < chunk.count {
                        let n = write(fd, base + off, chunk.count - off)
                        if n < 0 && errno == EINTR { continue }
                        guard n > 0 else { throw BuildError.invalid("cannot write \(dest): \(String(cString: strerror(errno)))") }
                        off += n
                    }
                }
                // Only the execute bit is kept: no set-id, sticky or group/other write bits from elsewhere.
                fchmod(fd, (e.mode & 0o111) != 0 ? 0o755 : 0o644)
                files.insert(parts.dropFirst().joined(separator: "/"))
            default:
                let what: String
                switch e.kind {
                case _ where e.hardlinkTarget != nil: what = "a hard link"
                case .symlink: what = "a symbolic link"
                case .fifo: what = "a FIFO"
                case .characterDevice: what = "a character device"
                case .blockDevice: what = "a block device"
                default: what = "not a regular file"
                }
                throw refuse("member '\(shown)' is \(what); an export holds only files and folders")
            }
        }
        try stream.finish()
        guard let top else { throw BuildError.invalid("\(archive): empty archive") }
        return (top, files)
    }

    /// The components of a member path or of a name in SHA256SUMS: relative, no `..`, no control
    /// characters or invalid UTF-8 (shown as U+FFFD), at most `limits.pathBytes` bytes, each
    /// component at most 255; `.` components are dropped.
    static func memberPath(_ path: String, limits: Limits, refuse: (String) -> BuildError) throws -> [String] {
        guard path.utf8.count <= limits.pathBytes else { throw refuse("has a path longer than \(limits.pathBytes) bytes") }
        guard !path.hasPrefix("/") else { throw refuse("is an absolute path") }
        guard !path.unicodeScalars.contains(where: unsafeInName) else {
            throw refuse("has a control character or invalid UTF-8 in its name")
        }
        let parts = path.split(separator: "/").map(String.init).filter { $0 != "." }
        guard !parts.isEmpty else { throw refuse("has an empty name") }
        guard !parts.contains("..") else { throw refuse("leaves the archive's folder ('..')") }
        guard parts.allSatisfy({ $0.utf8.count <= 255 }) else { throw refuse("has a name component longer than 255 bytes") }
        return parts
    }

    /// C0 and C1 controls, DEL, the replacement character (what invalid UTF-8 decodes to) and
    /// bidirectional controls, which make a name print as another.
    static func unsafeInName(_ u: Unicode.Scalar) -> Bool {
        u.value < 0x20 || (0x7f...0x9f).contains(u.value) || u.value == 0xFFFD
            || (0x202a...0x202e).contains(u.value) || (0x2066...0x2069).contains(u.value) || u.value == 0x200e || u.value == 0x200f
    }

    /// A small text file of the archive, refused above `limit` bytes or when it is not UTF-8.
    static func readText(_ path: String, limit: Int64) throws -> String {
        var st = stat()
        guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { throw BuildError.invalid("\(path): not a regular file") }
        guard Int64(st.st_size) <= limit else { throw BuildError.invalid("\(path): larger than \(limit) bytes") }
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw BuildError.invalid("\(path): unreadable or not UTF-8")
        }
        return text
    }

    /// SHA256SUMS: `HEX  NAME` lines (sha256sum's format, `*` for binary mode allowed), each name
    /// checked like a member path, none twice.
    static func readSums(root: String, top: String, archive: String, present: Set<String>, limits: Limits) throws -> [(file: String, sha: String)] {
        guard present.contains("SHA256SUMS") else { throw BuildError.invalid("\(archive): no SHA256SUMS in \(top)/; not an nxc export") }
        let text: String
        do { text = try readText(root + "/SHA256SUMS", limit: limits.textBytes) }
        catch { throw BuildError.invalid("\(archive): \(top)/SHA256SUMS: \(error)") }
        var sums: [(file: String, sha: String)] = []
        var seen = Set<String>()
        for (i, line) in text.split(separator: "\n").enumerated() {
            let where_ = "\(top)/SHA256SUMS:\(i + 1)"
            let parts = line.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
            let hex = parts.first.map(String.init) ?? ""
            guard parts.count == 2, hex.count == 64, hex.utf8.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) }) else {
                throw BuildError.invalid("\(where_): expected 'SHA256  FILE' (64 lowercase hex digits, two spaces, a name)")
            }
            var name = Substring(parts[1])
            if name.first == " " || name.first == "*" { name = name.dropFirst() }
            let file = try memberPath(String(name), limits: limits, refuse: {
                BuildError.invalid("\(where_): '\(FlavourRules.printable(String(name)))' \($0)")
            }).joined(separator: "/")
            guard seen.insert(file).inserted else { throw BuildError.invalid("\(where_): \(file) is listed twice") }
            sums.append((file, hex))
        }
        return sums
    }

    /// The agent binary an export carries, when SHA256SUMS lists it: a regular file of at most
    /// `agentMaxBytes`. Nil for exports made before nxc recorded it.
    static func exportedAgent(root: String, archive: String, listed: Set<String>, present: Set<String>) throws -> String? {
        guard listed.contains(agentMember), present.contains(agentMember) else { return nil }
        let path = root + "/" + agentMember
        var st = stat()
        guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            throw BuildError.invalid("\(archive): \(agentMember) is not a regular file; refusing it")
        }
        guard Int64(st.st_size) <= agentMaxBytes else {
            throw BuildError.invalid("\(archive): \(agentMember) is \(st.st_size) bytes, more than an agent (\(agentMaxBytes)); refusing it")
        }
        return path
    }

    /// One archive member as compared: its data by digest, so that neither archive is ever whole in memory.
    struct MemberSummary: Equatable {
        var kind: ArchiveEntry.Kind
        var mode: UInt32
        var uid: Int64
        var gid: Int64
        var mtime: Int64
        var linkTarget: String?
        var xattrs: [String: [UInt8]]
        var digest: [UInt8]
    }

    /// For two archives (tar, cpio; gzip, zstd) that differ: which members differ, at most 10.
    /// The exported one is from elsewhere: read as a stream, its expansion bounded by `limits`.
    static func archiveDifferences(exported: String, rebuilt: String, limits: Limits = Limits()) -> [String] {
        guard let ma = try? memberSummaries(exported, limits: limits), let mb = try? memberSummaries(rebuilt, limits: limits),
              ma.count > 1 || mb.count > 1 else { return [] }
        var out: [String] = []
        for p in Set(ma.keys).union(mb.keys).sorted() {
            switch (ma[p], mb[p]) {
            case (nil, _?): out.append("\(FlavourRules.printable(p)) only in the rebuild")
            case (_?, nil): out.append("\(FlavourRules.printable(p)) only in the export")
            case (let x?, let y?) where x != y:
                var what: [String] = []
                if x.digest != y.digest || x.kind != y.kind { what.append("content") }
                if x.mode != y.mode { what.append("mode") }
                if x.uid != y.uid || x.gid != y.gid { what.append("owner") }
                if x.mtime != y.mtime { what.append("time") }
                if x.linkTarget != y.linkTarget { what.append("link") }
                if x.xattrs != y.xattrs { what.append("xattrs") }
                out.append("\(FlavourRules.printable(p)) (\(what.joined(separator: ", ")))")
            default: break
            }
        }
        if out.count > 10 { out = Array(out.prefix(10)) + ["… \(out.count - 10) more members"] }
        return out
    }

    static func memberSummaries(_ path: String, limits: Limits) throws -> [String: MemberSummary] {
        var out: [String: MemberSummary] = [:]
        var count = 0
        try ArchiveReader.forEach(path: path, accepting: .tarOrCpio, maxExpandedBytes: limits.totalBytes) { e, s in
            count += 1
            // An initrd holds tens of thousands of members; far more is not an nxc artefact.
            guard count <= 10 * limits.members else { throw BuildError.invalid("\(path): more than \(10 * limits.members) members") }
            let h = SHA256Digest()
            if e.kind == .file { try s.readData { h.update($0) } }
            let summary = MemberSummary(kind: e.kind, mode: e.mode, uid: e.uid, gid: e.gid, mtime: e.mtime,
                                        linkTarget: e.linkTarget, xattrs: e.xattrs, digest: h.finalize())
            if out[e.path] == nil { out[e.path] = summary }
        }
        return out
    }

    static func makeTemporaryDirectory(prefix: String) throws -> String {
        var template = Array((NSTemporaryDirectory() + "/\(prefix)-XXXXXX").utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ b in b.baseAddress.flatMap { mkdtemp($0) } }) else {
            throw BuildError.invalid("cannot create a temporary folder: \(String(cString: strerror(errno)))")
        }
        return String(cString: made)
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
