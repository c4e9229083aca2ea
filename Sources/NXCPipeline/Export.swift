import Foundation
import NXCArchive
import NXCBuild
import NXCComposition
import NXCDeploy
import NXCDeployment
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
    /// `results`: folders `nxc collect` wrote, carried under `results/<run>/` when they were made
    /// with the artefacts being exported.
    public static func export(project: Project, composition path: String?, flavours requested: [String], output: String,
                              store: Store, tool: String, agent: String? = nil, results: [String] = [],
                              progress: @escaping @Sendable (String) -> Void) async throws -> Summary {
        guard let agent = agent ?? DataFiles.agentBinary() else {
            throw BuildError.agentMissing
        }
        let compositionFile = project.compositionFile(path)
        let lockPath = LockFile.path(forComposition: compositionFile)
        var flavours = requested
        if flavours.isEmpty { flavours = (try LockFile.load(path: lockPath)).map { $0.flavours.keys.sorted() } ?? [] }
        if flavours.isEmpty {
            throw BuildError.badInput(lockPath, problem: "does not exist yet, so it cannot say which flavours to export; give -f FLAVOUR (repeatable)")
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
        files += try resultMembers(results, composition: composition.name,
                                   builds: Dictionary(builds.map { ($0.flavour.name, $0.directory) }, uniquingKeysWith: { a, _ in a }))
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
            guard rename(tmp, output) == 0 else { throw BuildError.file("write", path: output, reason: String(cString: strerror(errno))) }
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
            let method = f.startMethod
            out += "    nxc start -f \(f.name)" + (method.bindsHosts ? " -m $OAR_NODEFILE" : String(repeating: " ", count: 17))
                + "  # \(method.summary)\n"
            out += "    nxc driver -f \(f.name)                 # runs the composition's test\n    nxc stop\n"
        }
        out += "\n`--frozen` installs exactly the locked packages and fails rather than add one.\n"
        return out
    }
}
