import Foundation
import NXCArchive
import NXCComposition
import NXCNames
import NXCStore

/// Builds root filesystems in two cached layers: the base (mmdebstrap of the flavour's packages)
/// and the system (the composition's packages installed into a copy of the base with apt), so
/// adding a package does not rebuild the base. Without root, one mmdebstrap (unshare mode, or
/// fakechroot mode where user namespaces are off) makes both, as a tar: mmdebstrap writes it inside
/// its namespace, where the owners are the image's, and nxc unpacks it as the user with a record of
/// those owners beside the tree (TreeOwnership). Everything in the store stays the user's to read,
/// scrub and delete, and archives of the tree get root's owners from the record. (Unpacked as is,
/// the tree would belong to the user's subordinate IDs: nxc could neither scrub nor remove it.)
public struct RootfsBuilder: Sendable {
    public let store: Store
    public let progress: @Sendable (String) -> Void
    /// Bumped when the way layers are made changes, so old entries are not reused.
    static let recipeVersion = "5"

    public init(store: Store, progress: @escaping @Sendable (String) -> Void) {
        self.store = store
        self.progress = progress
    }

    public func build(_ req: RootfsRequest, composition: Composition) async throws -> BuiltRootfs {
        guard Command.which("mmdebstrap") != nil else { throw BuildError.toolMissing("mmdebstrap", package: "mmdebstrap") }
        let lock = req.mode == .update ? nil : req.lock
        var h = InputHash("base")
        h.add("recipe", Self.recipeVersion)
        h.add("suite", req.distribution.suite)
        h.add("mirror", req.mirror)
        h.add("components", req.distribution.components)
        h.add("arch", req.distribution.architecture)
        h.add("packages", req.basePackages)
        h.add("source-date-epoch", String(req.sourceDateEpoch))
        let layered = HostFacts.isRoot
        if !layered {
            h.add("single-layer", req.packages)
            h.add("unpacked", "tar+ownership-2")
        }
        let baseKey = h.finalize()
        var ran = false
        var made: [(name: String, key: String, path: String)] = []
        let base: (path: String, reused: Bool)
        if let p = reusable(name: "base", key: baseKey, req: req, lock: lock) {
            base = (p, true)
            progress("base system: reused \(p)")
        } else {
            ran = true
            // Before minutes of mmdebstrap: whether (and how) this user can build at all.
            let decided = layered ? (mode: RootfsMode.root, note: nil) : try HostFacts.rootfsMode(HostFacts.gather())
            let mode = decided.mode
            if let note = decided.note { progress("base system: \(note)") }
            let all = layered ? req.basePackages : req.basePackages + req.packages
            progress("base system: running mmdebstrap (\(all.count) packages, \(req.distribution.suite), \(req.mirror))"
                     + (lock == nil ? "" : ", versions from \(req.lockPath)") + (layered ? "" : ", \(mode.rawValue) mode"))
            let started = Date()
            let key = newKey(baseKey, req: req, lock: lock)
            base = try await store.realise(name: "base", hash: key) { tmp in
                try Self.mmdebstrap(req, packages: all, into: tmp, mode: mode, lock: lock, composition: composition, progress: progress)
                try Self.checkAgainstLock(root: tmp + "/root", req: req, lock: lock, progress: progress)
            }
            made.append(("base", baseKey, base.path))
            progress(String(format: "base system: built in %.1f s", Date().timeIntervalSince(started)))
        }
        var result: BuiltRootfs
        if !layered || req.packages.isEmpty {
            result = BuiltRootfs(root: base.path + "/root", hash: baseKey, ranMmdebstrap: ran, reused: base.reused,
                                 ownership: Self.ownershipRecord(ofEntry: base.path))
        } else {
            var s = InputHash("system")
            s.add("base", baseKey)
            s.add("recipe", Self.recipeVersion)
            s.add("packages", req.packages)
            let sysKey = s.finalize()
            if let p = reusable(name: "system", key: sysKey, req: req, lock: lock) {
                progress("packages: reused \(p)")
                result = BuiltRootfs(root: p + "/root", hash: sysKey, ranMmdebstrap: ran, reused: true)
            } else {
                progress("packages: installing \(req.packages.joined(separator: " "))")
                let started = Date()
                let sys = try await store.realise(name: "system", hash: newKey(sysKey, req: req, lock: lock)) { tmp in
                    try Self.installPackages(req.packages, base: base.path + "/root", into: tmp, lock: lock, req: req,
                                             composition: composition)
                    try Self.checkAgainstLock(root: tmp + "/root", req: req, lock: lock, progress: progress)
                }
                made.append(("system", sysKey, sys.path))
                progress(String(format: "packages: installed in %.1f s", Date().timeIntervalSince(started)))
                result = BuiltRootfs(root: sys.path + "/root", hash: sysKey, ranMmdebstrap: ran, reused: false)
            }
        }
        // The image's packages, with the .deb hashes: from the lock when it has that version, else from
        // the apt indexes of both layers (reading those takes about half a second).
        var installed = try DebianRecords.installed(root: result.root)
        for i in installed.indices {
            if let l = lock?.packages[installed[i].name], l.version == installed[i].version, l.architecture == installed[i].architecture {
                installed[i].sha256 = l.sha256
            }
        }
        result.mirrorDate = lock?.mirrorDate
        if installed.contains(where: { $0.sha256.isEmpty }) || (result.mirrorDate == nil && !made.isEmpty) {
            let roots = result.root == base.path + "/root" ? [result.root] : [result.root, base.path + "/root"]
            let idx = DebianRecords.index(roots: roots)
            for i in installed.indices where installed[i].sha256.isEmpty {
                installed[i].sha256 = idx.sha["\(installed[i].name) \(installed[i].version) \(installed[i].architecture)"] ?? ""
            }
            result.mirrorDate = result.mirrorDate ?? idx.date
        }
        result.packages = installed
        // New layers are also found under the key of the versions they hold, so that the next build
        // (with the lock this build writes) reuses them, and under their plain input key: any build
        // may reuse them there when their versions are the ones its lock asks for (`reusable`).
        let pins = Self.pinsDigest(result.packages)
        for m in made {
            try? store.alias(name: m.name, hash: Self.combine(m.key, pins), to: m.path)
            try? store.alias(name: m.name, hash: m.key, to: m.path)
        }
        return result
    }

    /// The ownership record of a store entry, when its tree was unpacked by a normal user.
    static func ownershipRecord(ofEntry entry: String) -> String? {
        let p = entry + "/" + TreeOwnership.fileName
        return FileManager.default.fileExists(atPath: p) ? p : nil
    }

    /// A cached layer usable with this lock: the one made without pins when it holds the locked
    /// versions, else the one made for exactly the versions the lock gives this flavour.
    func reusable(name: String, key: String, req: RootfsRequest, lock: LockFile?) -> String? {
        if req.mode == .update { return nil }
        if let p = store.lookup(name: name, hash: key), Self.consistent(root: p + "/root", lock: lock) { return p }
        guard let lock, let names = lock.flavours[req.flavour] else { return nil }
        let pinned = names.compactMap { n in lock.packages[n].map { InstalledPackage(name: n, version: $0.version, architecture: $0.architecture, sha256: $0.sha256) } }
        if let p = store.lookup(name: name, hash: Self.combine(key, Self.pinsDigest(pinned))), Self.consistent(root: p + "/root", lock: lock) {
            return p
        }
        return nil
    }

    /// The store key of a layer built now: the plain key without a lock, else one that also names the
    /// lock (so it never shadows the layer built without one), or the time for a fresh resolution.
    func newKey(_ key: String, req: RootfsRequest, lock: LockFile?) -> String {
        if req.mode == .update { return Self.combine(key, "update-\(Date().timeIntervalSince1970)") }
        guard let lock else { return key }
        let all = lock.packages.map { InstalledPackage(name: $0.key, version: $0.value.version, architecture: $0.value.architecture, sha256: $0.value.sha256) }
        return Self.combine(key, Self.pinsDigest(all))
    }

    static func combine(_ key: String, _ extra: String) -> String {
        var h = InputHash("pinned")
        h.add("key", key)
        h.add("pins", extra)
        return h.finalize()
    }

    static func pinsDigest(_ packages: [InstalledPackage]) -> String {
        var h = InputHash("pins")
        h.add("packages", packages.sorted { $0.name < $1.name }.map { "\($0.name) \($0.version) \($0.architecture) \($0.sha256)" })
        return h.finalize()
    }

    /// True when every package of `root` that the lock names has the locked version.
    static func consistent(root: String, lock: LockFile?) -> Bool {
        guard let lock else { return true }
        guard let installed = try? DebianRecords.installed(root: root) else { return false }
        return installed.allSatisfy { p in lock.packages[p.name].map { $0.version == p.version && $0.architecture == p.architecture } ?? true }
    }

    /// After a layer is made with a lock: every locked package has its locked version and .deb.
    /// Lists every mismatch at once. (Whether the image holds exactly the lock's set, `--frozen`,
    /// is checked once per build in BuildPipeline, for reused layers too.)
    static func checkAgainstLock(root: String, req: RootfsRequest, lock: LockFile?,
                                 progress: (String) -> Void = { _ in }) throws {
        guard let lock else { return }
        let started = Date()
        defer { progress(String(format: "  versions checked against the lock in %.1f s", Date().timeIntervalSince(started))) }
        let installed = try DebianRecords.installed(root: root)
        let sha = DebianRecords.index(root: root).sha
        var problems: [LockError] = []
        for p in installed {
            guard let want = lock.packages[p.name] else { continue }
            if want.version != p.version {
                problems.append(LockError(file: req.lockPath, line: want.line, key: "packages.\(p.name)",
                                          "locked at version \(want.version), but the mirror \(req.mirror) has \(p.version) instead"))
            } else if let got = sha["\(p.name) \(p.version) \(p.architecture)"], got != want.sha256 {
                problems.append(LockError(file: req.lockPath, line: want.line, key: "packages.\(p.name)",
                                          "the mirror's .deb of \(p.name) \(p.version) has sha256 \(got), the lock says \(want.sha256)"))
            }
        }
        guard !problems.isEmpty else { return }
        var text = problems.prefix(20).map(\.description).joined(separator: "\n")
        if problems.count > 20 { text += "\n… and \(problems.count - 20) more" }
        if problems.contains(where: { $0.message.contains("the mirror") }) {
            text += "\nThe lock's versions are gone from \(req.mirror). Build from a mirror that still has them, e.g. set"
                + "\n  mirror: \"\(lock.snapshotMirror)\"\nin \(req.lockPath) (a snapshot of the Debian archive),"
                + " or move the lock to the mirror's current versions with `nxc lock --update`."
        }
        throw BuildError.lockMismatch(lock: req.lockPath, differences: text)
    }

    /// Writes apt preferences holding the lock's versions to a private temporary file.
    static func preferencesFile(_ lock: LockFile) throws -> String {
        var template = Array((NSTemporaryDirectory() + "/nxc-lock-XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw BuildError.file("create", path: "a temporary file in \(NSTemporaryDirectory())", reason: String(cString: strerror(errno))) }
        close(fd)
        let path = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        try Data(lock.aptPreferences().utf8).write(to: URL(fileURLWithPath: path))
        chmod(path, 0o644)
        return path
    }

    static let preferencesInImage = "/etc/apt/preferences.d/nxc-lock"
}
