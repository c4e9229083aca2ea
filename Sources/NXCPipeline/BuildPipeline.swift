import Foundation
import NXCBuild
import NXCComposition
import NXCDeploy
import NXCDeployment
import NXCFlavours
import NXCStore

/// What `nxc build` produced.
public struct BuildResult: Sendable {
    public var composition: Composition
    public var flavour: Flavour
    public var directory: String
    public var artefacts: [Artefact]
    /// The files the start method wrote beside them (launch scripts, kexec.sh, docker-compose.yml).
    public var generated: [Artefact]
    public var ranMmdebstrap: Bool
    public var seconds: Double
    /// The composition's lock and what this build changed in it (empty: nothing).
    public var lockPath: String
    public var lockChanges: [String]
    public var lockCreated: Bool
}

/// The root filesystem of one flavour, resolved against the composition's lock.
struct ResolvedImage: Sendable {
    var composition: Composition
    var flavour: Flavour
    var rootfs: BuiltRootfs
    var lockPath: String
    /// The lock before and after this flavour was recorded.
    var oldLock: LockFile?
    var newLock: LockFile
}

/// parse → rootfs (store) → artefact kind → start method files → `build/<composition>/<flavour>/`.
public enum BuildPipeline {
    public static func build(project: Project, composition path: String?, flavour name: String, mirror: String?,
                             lockMode: LockMode = .follow, agent agentBinary: String? = nil,
                             store: Store, progress: @escaping @Sendable (String) -> Void) async throws -> BuildResult {
        let started = Date()
        // `agentBinary`: the agent an export carried (verify), else the one beside this nxc.
        guard let agent = agentBinary ?? DataFiles.agentBinary() else {
            throw BuildError.agentMissing
        }
        let compositionFile = project.compositionFile(path)
        let lockPath = LockFile.path(forComposition: compositionFile)
        let resolved = try await resolve(project: project, compositionFile: compositionFile, flavour: name, mirror: mirror,
                                         mode: lockMode, lock: try LockFile.load(path: lockPath), store: store, progress: progress)
        let composition = resolved.composition
        let flavour = resolved.flavour
        let rootfs = resolved.rootfs
        try RootfsBuilder.checkServices(of: composition, root: rootfs.root)

        let final = project.buildDirectory(composition: composition.name, flavour: flavour.name)
        let parent = (final as NSString).deletingLastPathComponent
        let fm = FileManager.default
        try fm.createDirectory(atPath: parent, withIntermediateDirectories: true)
        Leftovers.collect(in: parent, name: flavour.name)
        let tmp = "\(parent)/.\(flavour.name).tmp-\(getpid())"
        try? fm.removeItem(atPath: tmp)
        try fm.createDirectory(atPath: tmp, withIntermediateDirectories: true)
        do {
            let ctx = ArtefactContext(composition: composition, flavour: flavour, rootfs: rootfs,
                                      payload: ImagePayload(composition: composition, agentBinary: agent, masked: flavour.mask,
                                                            files: flavour.files, links: flavour.links,
                                                            installer: flavour.startMethod.takes(artefact: flavour.artefact).contains(.install)),
                                      store: store, outputDirectory: tmp, finalDirectory: final, progress: progress)
            var artefacts = try await flavour.artefactKind.emit(ctx)
            // The start method's files (launch scripts, kexec.sh, docker-compose.yml): listed in the
            // manifest and the build report like the artefacts, apart from them.
            var generated = try flavour.startMethod.prepare(buildDirectory: tmp, composition: composition, flavour: flavour)
                .sorted().map(Artefact.init(path:))
            let manifest = Manifest(composition: composition.name, flavour: flavour.name, rootfs: rootfs.hash,
                                    artefacts: artefacts.map { $0.named(in: nil) }, generated: generated.map { $0.named(in: nil) })
            let enc = JSONEncoder()
            enc.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
            try writeAtomically(try enc.encode(manifest), to: tmp + "/manifest.json")
            try install(tmp, at: final)
            artefacts = artefacts.map { $0.named(in: final) }
            generated = generated.map { $0.named(in: final) }
            // The lock is written once the artefacts are in place: a failed build leaves it as it was.
            let changes = try writeLock(resolved)
            return BuildResult(composition: composition, flavour: flavour, directory: final, artefacts: artefacts,
                               generated: generated, ranMmdebstrap: rootfs.ranMmdebstrap, seconds: Date().timeIntervalSince(started),
                               lockPath: lockPath, lockChanges: changes, lockCreated: resolved.oldLock == nil)
        } catch {
            try? fm.removeItem(atPath: tmp)
            throw error
        }
    }

    /// Puts the finished folder `tmp` at `final`, durably: its files reach the disk first. Where
    /// `final` exists the two are exchanged in one step (renameat2 RENAME_EXCHANGE), so that a
    /// reader never finds `final` missing, and the old folder, now at `tmp`, is removed. A file
    /// system that cannot exchange (no renameat2, or EINVAL as on some network file systems)
    /// gets two renames, with a moment in which `final` is missing.
    static func install(_ tmp: String, at final: String) throws {
        let fm = FileManager.default
        let parent = (final as NSString).deletingLastPathComponent
        try Durable.syncFilesystem(of: tmp)
        var st = stat()
        if lstat(final, &st) == 0 {
            if try Durable.exchange(tmp, final) {
                try? fm.removeItem(atPath: tmp)
            } else {
                let old = "\(parent)/.\((final as NSString).lastPathComponent).old-\(getpid())"
                try fm.moveItem(atPath: final, toPath: old)
                try fm.moveItem(atPath: tmp, toPath: final)
                try? fm.removeItem(atPath: old)
            }
        } else if rename(tmp, final) != 0 {
            throw BuildError.file("move \(tmp) to", path: final, reason: String(cString: strerror(errno)))
        }
        try Durable.sync(parent)
    }

    /// `nxc lock`: resolves the root filesystem of each flavour (from the store when it holds them)
    /// and records their packages in the lock; with `update`, against the mirror's current versions.
    public static func lock(project: Project, composition path: String?, flavours names: [String], update: Bool,
                            mirror: String?, store: Store,
                            progress: @escaping @Sendable (String) -> Void) async throws -> (path: String, changes: [String], lock: LockFile) {
        let compositionFile = project.compositionFile(path)
        let lockPath = LockFile.path(forComposition: compositionFile)
        let original = try LockFile.load(path: lockPath)
        var names = names
        if names.isEmpty { names = original.map { $0.flavours.keys.sorted() } ?? [] }
        if names.isEmpty { names = [try Flavour.defaultName(project: project.directory)] }
        var current = original
        for name in names {
            let r = try await resolve(project: project, compositionFile: compositionFile, flavour: name, mirror: mirror,
                                      mode: update ? .update : .follow, lock: current, store: store, progress: progress)
            current = r.newLock
        }
        guard var final = current else { throw BuildError.badInput(compositionFile, problem: "no flavour to lock") }
        if update {
            // Flavours resolved now replace their old records; packages only others used go with them.
            for f in final.flavours.keys where !names.contains(f) { final.flavours[f] = original?.flavours[f] }
            let used = Set(final.flavours.values.joined())
            final.packages = final.packages.filter { used.contains($0.key) }
        }
        let composition = try Composition.load(path: compositionFile)
        if final != original { try writeAtomically(Data(final.render(composition: composition.name).utf8), to: lockPath) }
        return (lockPath, final.changes(from: original), final)
    }

    /// Parses the composition and flavour and makes the root filesystem with the lock's versions.
    static func resolve(project: Project, compositionFile: String, flavour name: String, mirror: String?, mode: LockMode,
                        lock: LockFile?, store: Store, progress: @escaping @Sendable (String) -> Void) async throws -> ResolvedImage {
        let composition = try Composition.load(path: compositionFile)
        let flavour = try Flavour.named(name, project: project.directory)
        let lockPath = LockFile.path(forComposition: compositionFile)
        await store.collectGarbage()
        var distribution = composition.distribution
        for c in flavour.components where !distribution.components.contains(c) { distribution.components.append(c) }
        if mode == .frozen {
            guard let lock else { throw LockError(file: lockPath, "no lock file; `nxc lock` writes it") }
            guard lock.flavours[flavour.name] != nil else {
                throw LockError(file: lockPath, key: "flavours", "has no packages for flavour '\(flavour.name)'; `nxc lock -f \(flavour.name)` adds them")
            }
        }
        if let lock, mode != .update {
            if lock.suite != distribution.suite || lock.architecture != distribution.architecture {
                throw LockError(file: lockPath, key: "suite",
                                "the lock is for \(lock.suite)/\(lock.architecture) but the composition asks for "
                                + "\(distribution.suite)/\(distribution.architecture); `nxc lock --update` re-resolves it")
            }
        }
        let epoch = (mode == .update ? nil : lock?.sourceDateEpoch) ?? LockFile.todayEpoch()
        let usedMirror = mirror ?? (mode == .update ? nil : lock?.mirror) ?? composition.distribution.mirror ?? HostFacts.aptMirror()
        // Each source was checked where it entered (composition, lock, --mirror, the host's apt);
        // checked again here, where it becomes mmdebstrap's argument, for any other caller.
        do { try DebianSource.validateMirror(usedMirror) } catch {
            throw BuildError.badInput("the package mirror '\(usedMirror)'", problem: "refused: \(error)")
        }
        let req = RootfsRequest(distribution: distribution, mirror: usedMirror,
                                basePackages: flavour.packages, packages: composition.allPackages,
                                flavour: flavour.name, lock: lock, lockPath: lockPath, mode: mode, sourceDateEpoch: epoch)
        let rootfs = try await RootfsBuilder(store: store, progress: progress).build(req, composition: composition)
        if let missing = rootfs.packages.first(where: { $0.sha256.isEmpty }) {
            throw BuildError.notLockable(package: missing.name, version: missing.version, root: rootfs.root)
        }
        if mode == .frozen, let lock, let names = lock.flavours[flavour.name] {
            // Also when the layers came from the store: the image holds exactly the lock's packages.
            let have = Dictionary(rootfs.packages.map { ($0.name, $0.version) }, uniquingKeysWith: { a, _ in a })
            let extra = have.keys.filter { !names.contains($0) }.sorted()
            let missing = names.filter { have[$0] == nil }
            let moved = names.filter { n in have[n].map { $0 != lock.packages[n]?.version } ?? false }
            if !extra.isEmpty || !missing.isEmpty || !moved.isEmpty {
                var why: [String] = []
                if !extra.isEmpty { why.append("not in the lock: " + extra.prefix(10).joined(separator: ", ")) }
                if !missing.isEmpty { why.append("locked but not installed: " + missing.prefix(10).joined(separator: ", ")) }
                if !moved.isEmpty { why.append("other versions than locked: " + moved.prefix(10).joined(separator: ", ")) }
                throw LockError(file: lockPath, key: "flavours.\(flavour.name)",
                                "--frozen: the image does not hold exactly the locked packages (\(why.joined(separator: "; ")))")
            }
        }
        var newLock = lock ?? LockFile(mirror: usedMirror, suite: distribution.suite, architecture: distribution.architecture,
                                       sourceDateEpoch: epoch)
        if mode == .update {
            newLock.mirror = usedMirror
            newLock.suite = distribution.suite
            newLock.architecture = distribution.architecture
            newLock.sourceDateEpoch = epoch
            newLock.mirrorDate = rootfs.mirrorDate
        }
        if newLock.mirrorDate == nil { newLock.mirrorDate = rootfs.mirrorDate }
        newLock.record(flavour: flavour.name, installed: rootfs.packages)
        return ResolvedImage(composition: composition, flavour: flavour, rootfs: rootfs, lockPath: lockPath,
                             oldLock: lock, newLock: newLock)
    }

    /// Writes the lock when the build changed it; returns the changes.
    static func writeLock(_ r: ResolvedImage) throws -> [String] {
        guard r.newLock != r.oldLock else { return [] }
        // Synced before and after its rename: a power loss leaves the old lock or the new one.
        try writeAtomically(Data(r.newLock.render(composition: r.composition.name).utf8), to: r.lockPath)
        return r.newLock.changes(from: r.oldLock)
    }

    struct Manifest: Codable {
        var composition: String
        var flavour: String
        var rootfs: String
        var artefacts: [Artefact]
        /// The start method's files, by name, size and SHA-256.
        var generated: [Artefact]
    }
}

extension Artefact {
    /// The same file, its path in `folder` (nil: its name alone, as the manifest gives it).
    func named(in folder: String?) -> Artefact {
        var a = self
        a.path = folder.map { $0 + "/" + name } ?? name
        return a
    }
}
