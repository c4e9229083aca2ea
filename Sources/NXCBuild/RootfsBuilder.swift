import Foundation
import NXCArchive
import NXCComposition
import NXCNames
import NXCStore

/// What goes into a root filesystem.
public struct RootfsRequest: Sendable {
    public var distribution: Distribution
    public var mirror: String
    /// Packages of the flavour and the agent: the cached base layer.
    public var basePackages: [String]
    /// Packages of the composition: installed on top of the base.
    public var packages: [String]
    /// The flavour the image is for: its entry in the lock.
    public var flavour: String
    /// The composition's lock (nil: none yet; the build resolves against the mirror).
    public var lock: LockFile?
    /// Where the lock lives (for errors).
    public var lockPath: String
    public var mode: LockMode
    /// SOURCE_DATE_EPOCH of every step (from the lock).
    public var sourceDateEpoch: Int64

    public init(distribution: Distribution, mirror: String, basePackages: [String], packages: [String],
                flavour: String = "", lock: LockFile? = nil, lockPath: String = "composition.lock",
                mode: LockMode = .follow, sourceDateEpoch: Int64 = 1_700_000_000) {
        self.distribution = distribution
        self.mirror = mirror
        self.basePackages = basePackages.sorted()
        self.packages = packages.sorted()
        self.flavour = flavour
        self.lock = lock
        self.lockPath = lockPath
        self.mode = mode
        self.sourceDateEpoch = sourceDateEpoch
    }
}

/// How a build treats the composition's lock.
public enum LockMode: Sendable {
    /// Install the locked versions; packages the lock does not have yet (a new flavour, a package
    /// added to the composition) are resolved against the mirror and added.
    case follow
    /// Install exactly the lock's packages for this flavour, nothing else (`--frozen`, `nxc verify`).
    case frozen
    /// Ignore the lock and resolve against the mirror's current versions (`nxc lock --update`).
    case update
}

/// A root filesystem in the store.
public struct BuiltRootfs: Sendable {
    /// The directory holding the system tree.
    public var root: String
    public var hash: String
    public var ranMmdebstrap: Bool
    public var reused: Bool
    /// Every package of the image, with the SHA-256 of its .deb.
    public var packages: [InstalledPackage] = []
    /// Date of the mirror's Release file the packages were resolved against.
    public var mirrorDate: String?
    /// The ownership record of a tree a normal user built (owners, modes, device nodes and attributes
    /// its files cannot carry); nil when the files have them (a build as root).
    public var ownership: String?

    /// The record that archives of this tree must be written with (ArchiveWriter.addTree), if any.
    public func ownershipRecord() throws -> TreeOwnership? {
        try ownership.map { try TreeOwnership.load(path: $0) }
    }
}

/// A file operation of the build that failed, with the path and what nxc was doing (never a bare
/// Foundation error).
public struct BuildFileError: Error, CustomStringConvertible {
    public var doing: String
    public var path: String
    public var reason: String

    public init(_ doing: String, path: String, error: Error) {
        self.doing = doing
        self.path = path
        reason = Self.reason(error)
    }

    public var description: String { "error: \(doing): \(path): \(reason)" }

    /// The system's words for what went wrong (Foundation wraps errno in NSCocoaErrorDomain codes).
    static func reason(_ error: Error) -> String {
        let ns = error as NSError
        if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(underlying.code)))
        }
        if ns.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(ns.code))) }
        if ns.domain == NSCocoaErrorDomain {
            switch CocoaError.Code(rawValue: ns.code) {
            case .fileNoSuchFile, .fileReadNoSuchFile: return String(cString: strerror(ENOENT))
            case .fileWriteNoPermission, .fileReadNoPermission: return String(cString: strerror(EACCES))
            case .fileWriteOutOfSpace: return String(cString: strerror(ENOSPC))
            case .fileWriteVolumeReadOnly: return String(cString: strerror(EROFS))
            case .fileWriteFileExists: return String(cString: strerror(EEXIST))
            default: return "failed (Foundation error \(ns.code))"
            }
        }
        return "\(error)"
    }
}

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
        throw BuildError.invalid("the build does not match \(req.lockPath):\n" + text)
    }

    /// Writes apt preferences holding the lock's versions to a private temporary file.
    static func preferencesFile(_ lock: LockFile) throws -> String {
        var template = Array((NSTemporaryDirectory() + "/nxc-lock-XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw BuildError.invalid("cannot create a temporary file: \(String(cString: strerror(errno)))") }
        close(fd)
        let path = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        try Data(lock.aptPreferences().utf8).write(to: URL(fileURLWithPath: path))
        chmod(path, 0o644)
        return path
    }

    static let preferencesInImage = "/etc/apt/preferences.d/nxc-lock"

    /// mmdebstrap, maintainer scripts, mkinitramfs and shadow honour SOURCE_DATE_EPOCH (the lock's),
    /// so builds of the same inputs at different times give the same files.
    static func mmdebstrap(_ req: RootfsRequest, packages: [String], into tmp: String, mode: RootfsMode,
                           lock: LockFile?, composition: Composition, progress: (String) -> Void = { _ in }) throws {
        let log = tmp + "/mmdebstrap.log"
        let root = tmp + "/root"
        // As a normal user, a tar: written inside mmdebstrap's namespace (or under fakeroot), it has the image's owners.
        let target = mode == .root ? root : tmp + "/root.tar"
        // The lock's versions, as apt preferences during the build.
        var prefs: String?
        if let lock { prefs = try preferencesFile(lock) }
        defer { if let prefs { try? FileManager.default.removeItem(atPath: prefs) } }
        let argv = mmdebstrapArguments(req, packages: packages, mode: mode, target: target, preferences: prefs)
        do {
            var env = ProcessInfo.processInfo.environment
            env["SOURCE_DATE_EPOCH"] = String(req.sourceDateEpoch)
            try Command.run(argv, environment: env, log: log, timeout: 1800)
        } catch let e as CommandError {
            if let missing = unknownPackage(in: e.output), let loc = composition.location(ofPackage: missing) {
                throw BuildError.unknownPackage(loc)
            }
            throw BuildError.stepFailed("mmdebstrap", log: log, tail: e.description)
        }
        let fm = FileManager.default
        var record: TreeOwnership?
        if mode != .root {
            let started = Date()
            do { try fm.createDirectory(atPath: root, withIntermediateDirectories: false) }
            catch { throw BuildFileError("creating the folder of the image", path: root, error: error) }
            record = try TreeOwnership.unpack(archive: target, into: root)
            do { try fm.removeItem(atPath: target) }
            catch { throw BuildFileError("removing mmdebstrap's tar once unpacked", path: target, error: error) }
            progress(String(format: "base system: unpacked in %.1f s (owners and modes of the image in %@)",
                            Date().timeIntervalSince(started), tmp + "/" + TreeOwnership.fileName))
        }
        try remove(preferencesInImage, in: root, ownership: &record, doing: "removing the lock's apt preferences from the image")
        try scrub(root, ownership: &record)
        if let record { try record.write(to: tmp + "/" + TreeOwnership.fileName) }
    }

    /// mmdebstrap's command line. No option turns signature checks off; the lock's preferences come
    /// in through mmdebstrap's own `upload` hook command (not a shell; the path has no spaces).
    static func mmdebstrapArguments(_ req: RootfsRequest, packages: [String], mode: RootfsMode, target: String,
                                    preferences: String?) -> [String] {
        // fakechroot mode runs mmdebstrap itself under fakechroot and fakeroot.
        var argv = mode == .fakechroot ? ["fakechroot", "fakeroot"] : []
        argv += ["mmdebstrap", "--mode=\(mode.rawValue)", "--variant=minbase",
                 "--architectures=\(req.distribution.architecture)",
                 "--components=\(req.distribution.components.joined(separator: ","))",
                 "--aptopt=Acquire::Retries \"3\"",
                 "--aptopt=APT::Install-Recommends \"false\"",
                 // dpkg need not sync each file it unpacks: the store syncs the whole entry once
                 // before the rename that makes it visible (Store.realise), so a crash still leaves
                 // no entry that a later build trusts (measured: vm-ramdisk's base 80 s instead of 91 s).
                 "--dpkgopt=force-unsafe-io",
                 // Lists stay so that the package layer can install without a new download of them.
                 "--skip=cleanup/apt/lists"]
        if mode != .root { argv.append("--format=tar") }
        if !packages.isEmpty { argv.append("--include=\(packages.joined(separator: ","))") }
        if let preferences { argv.append("--setup-hook=upload \(preferences) \(preferencesInImage)") }
        return argv + [req.distribution.suite, target, req.mirror]
    }

    static func installPackages(_ packages: [String], base: String, into tmp: String, lock: LockFile?, req: RootfsRequest,
                                composition: Composition) throws {
        let root = tmp + "/root"
        let log = tmp + "/apt.log"
        // Copy the base (reflinks where the filesystem has them), then apt inside a chroot.
        try Command.run(["cp", "-a", "--reflink=auto", base, root], timeout: 600)
        let env = ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C.UTF-8",
                   "SOURCE_DATE_EPOCH": String(req.sourceDateEpoch)]
        let fm = FileManager.default
        // Name resolution for apt inside the chroot; removed afterwards.
        let resolv = root + "/etc/resolv.conf"
        let hadResolv = fm.fileExists(atPath: resolv)
        if !hadResolv, let host = fm.contents(atPath: "/etc/resolv.conf") { fm.createFile(atPath: resolv, contents: host) }
        // Keep package scripts from starting services in the chroot.
        let policy = root + "/usr/sbin/policy-rc.d"
        fm.createFile(atPath: policy, contents: Data("#!/bin/sh\nexit 101\n".utf8), attributes: [.posixPermissions: 0o755])
        let prefs = root + preferencesInImage
        if let lock { fm.createFile(atPath: prefs, contents: Data(lock.aptPreferences().utf8)) }
        defer {
            try? fm.removeItem(atPath: prefs)
            try? fm.removeItem(atPath: policy)
            if !hadResolv { try? fm.removeItem(atPath: resolv) }
        }
        do {
            try Command.run(["chroot", root, "apt-get", "update", "-q"], environment: env, log: log, timeout: 600)
            // --force-unsafe-io: the store syncs the layer once before its rename (see mmdebstrapArguments).
            try Command.run(["chroot", root, "apt-get", "install", "-y", "-q", "--no-install-recommends",
                             "-o", "Dpkg::Options::=--force-confold", "-o", "Dpkg::Options::=--force-unsafe-io",
                             "-o", "Acquire::Retries=3"] + packages,
                            environment: env, log: log + ".install", timeout: 1800)
            try Command.run(["chroot", root, "apt-get", "clean"], environment: env, timeout: 120)
        } catch let e as CommandError {
            if let missing = unknownPackage(in: e.output), let loc = composition.location(ofPackage: missing) {
                throw BuildError.unknownPackage(loc)
            }
            throw BuildError.stepFailed("apt-get install in the image", log: log, tail: e.description)
        }
        var noRecord: TreeOwnership?
        try scrub(root, ownership: &noRecord)
    }

    /// apt's and mmdebstrap's message for a name the mirror does not have.
    static func unknownPackage(in output: String) -> String? {
        for line in output.split(separator: "\n") {
            for marker in ["Unable to locate package ", "has no installation candidate"] {
                if let r = line.range(of: marker) {
                    if marker.hasPrefix("Unable") {
                        return String(line[r.upperBound...]).trimmingCharacters(in: .whitespaces)
                    }
                    // "E: Package 'foo' has no installation candidate"
                    let parts = line.split(separator: "'")
                    if parts.count >= 2 { return String(parts[1]) }
                }
            }
        }
        return nil
    }

    /// Removes what must never be in an artefact (private host keys) and what differs between builds.
    /// `ownership`: the record of a tree a normal user unpacked, kept in step with what changes here.
    /// A file that cannot be removed is an error naming it (a secret left in an image is not a detail).
    static func scrub(_ root: String, ownership: inout TreeOwnership?) throws {
        let fm = FileManager.default
        if let names = try? fm.contentsOfDirectory(atPath: root + "/etc/ssh") {
            for n in names.sorted() where n.hasPrefix("ssh_host_") {
                try remove("/etc/ssh/" + n, in: root, ownership: &ownership,
                           doing: "removing an SSH host key the build made (each node makes its own at boot)")
            }
        }
        // Secrets packages generate at install time are not shipped (no secret in an artefact):
        // munge's key comes from the composition at run time (templates/slurm).
        try remove("/etc/munge/munge.key", in: root, ownership: &ownership, doing: "removing the munge key the build made")
        // systemd creates a fresh machine id on each node at boot. Mode set here, not by the umask: root
        // and user builds give the same file.
        let machineID = root + "/etc/machine-id"
        guard fm.createFile(atPath: machineID, contents: Data()), chmod(machineID, 0o644) == 0 else {
            throw BuildFileError("emptying the image's machine id", path: machineID,
                                 error: NSError(domain: NSPOSIXErrorDomain, code: Int(errno)))
        }
        ownership?.entries["/etc/machine-id"] = TreeOwnership.Entry(uid: 0, gid: 0, mode: 0o644)
        try remove("/var/lib/dbus/machine-id", in: root, ownership: &ownership, doing: "removing the build's D-Bus machine id")
        // apt's download folders: _apt's when mmdebstrap's apt could drop privileges (unshare mode, a
        // store _apt can read), root's when it could not (root's own store). Root's in every image;
        // apt hands them to _apt on the node whenever it runs.
        for dir in ["/var/cache/apt/archives/partial", "/var/lib/apt/lists/partial"] {
            var st = stat()
            guard lstat(root + dir, &st) == 0, st.st_mode & S_IFMT == S_IFDIR else { continue }
            if ownership != nil {
                ownership?.entries[dir] = TreeOwnership.Entry(uid: 0, gid: 0, mode: 0o700)
            } else if chown(root + dir, 0, 0) != 0 || chmod(root + dir, 0o700) != 0 {
                throw BuildFileError("giving apt's download folder to root", path: root + dir,
                                     error: NSError(domain: NSPOSIXErrorDomain, code: Int(errno)))
            }
        }
        // Records of the build itself (dates, inode-keyed caches, backups of the previous state).
        let records = "removing a record of the build (they differ between builds of the same inputs)"
        try removeFiles("/var/log", in: root, ownership: &ownership, doing: records) { $0.hasSuffix(".log") || $0.hasSuffix(".log.xz") }
        try remove("/var/cache/ldconfig/aux-cache", in: root, ownership: &ownership, doing: records)
        for dir in ["/var/lib/dpkg", "/var/cache/debconf"] {
            try removeFiles(dir, in: root, recursive: false, ownership: &ownership, doing: records) { $0.hasSuffix("-old") }
        }
        for dir in ["/var/cache/apt/archives/partial", "/var/cache/apt"] {
            try removeFiles(dir, in: root, recursive: false, ownership: &ownership, doing: "removing apt's caches from the image") {
                $0.hasSuffix(".bin") || $0.hasSuffix(".deb")
            }
        }
    }

    /// Removes `rel` (a path inside the tree at `root`) if it is there, and its entry from the record.
    static func remove(_ rel: String, in root: String, ownership: inout TreeOwnership?, doing: String) throws {
        let path = root + rel
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        do { try FileManager.default.removeItem(atPath: path) }
        catch { throw BuildFileError(doing, path: path, error: error) }
        ownership?.entries[rel] = nil
    }

    /// Removes the files under `dir` (inside the tree) whose names `match`; symbolic links to folders are not followed.
    static func removeFiles(_ dir: String, in root: String, recursive: Bool = true, ownership: inout TreeOwnership?,
                            doing: String, where match: (String) -> Bool) throws {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: root + dir) else { return }
        for n in names.sorted() {
            let rel = dir + "/" + n
            var st = stat()
            guard lstat(root + rel, &st) == 0 else { continue }
            if st.st_mode & S_IFMT == S_IFDIR {
                if recursive { try removeFiles(rel, in: root, ownership: &ownership, doing: doing, where: match) }
            } else if match(n) {
                try remove(rel, in: root, ownership: &ownership, doing: doing)
            }
        }
    }

    /// Checks that every role's services exist as unit files in the image.
    public static func checkServices(of composition: Composition, root: String) throws {
        let dirs = ["/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"]
        for role in composition.roles {
            for s in role.services {
                // The agent's rule (NXCNames): `php8.2-fpm` is `php8.2-fpm.service`, not a unit of type "2-fpm".
                guard let unit = UnitName.normalize(s.value) else {
                    throw BuildError.invalid("\(s.location): error: \(s.key): '\(s.value)' "
                                             + (UnitName.problem(s.value) ?? "is not a systemd unit name"))
                }
                // A unit the role brings itself as one of its files counts too.
                var found = dirs.contains { d in FileManager.default.fileExists(atPath: root + d + "/" + unit)
                    || role.files.contains { $0.path == d + "/" + unit } }
                // Template instances (getty@tty1.service) come from their template unit.
                if !found, let template = UnitName.template(of: unit) {
                    found = dirs.contains { d in FileManager.default.fileExists(atPath: root + d + "/" + template)
                        || role.files.contains { $0.path == d + "/" + template } }
                }
                if !found { throw BuildError.missingService(Located(unit, at: s.location, key: s.key), role: role.name) }
            }
        }
    }
}
