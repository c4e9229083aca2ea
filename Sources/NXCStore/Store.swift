import Glibc
import Foundation

/// Errors of the content-addressed store, with the path involved.
public enum StoreError: Error, CustomStringConvertible {
    case unreadable(String)
    case cannotCreate(String, String)
    case cannotSync(String, String)

    public var description: String {
        switch self {
        case .unreadable(let p): return "cannot read \(p)"
        case .cannotCreate(let p, let why): return "cannot create store entry \(p): \(why)"
        case .cannotSync(let p, let why): return "cannot flush \(p) to disk: \(why)"
        }
    }
}

/// A content-addressed store: each entry is a directory named `<hash>-<name>`, built in a
/// temporary directory and renamed into place, so an interrupted build never leaves an entry
/// that a later build would trust. The entry's files reach the disk before the rename and the
/// rename reaches it before `realise` returns, so a power loss cannot leave a visible entry
/// with empty or missing files either.
public actor Store {
    public nonisolated let root: String

    public init(root: String) {
        self.root = root
    }

    /// `$NXC_STORE`, else `$XDG_CACHE_HOME/nxc`, else `~/.cache/nxc`.
    public static func defaultRoot(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let s = environment["NXC_STORE"], !s.isEmpty { return s }
        if let x = environment["XDG_CACHE_HOME"], !x.isEmpty { return x + "/nxc" }
        return (environment["HOME"] ?? NSHomeDirectory()) + "/.cache/nxc"
    }

    public nonisolated func path(name: String, hash: String) -> String { "\(root)/\(hash)-\(name)" }

    public nonisolated func lookup(name: String, hash: String) -> String? {
        let p = path(name: name, hash: hash)
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: p, isDirectory: &isDir) && isDir.boolValue ? p : nil
    }

    /// `mkdir -p` with the system's reason in the error ("Permission denied"), not Foundation's codes.
    static func makeDirectories(_ path: String) throws {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDir) {
            guard isDir.boolValue else { throw StoreError.cannotCreate(path, "it exists and is not a folder") }
            return
        }
        let parent = (path as NSString).deletingLastPathComponent
        if !parent.isEmpty, parent != path { try makeDirectories(parent) }
        guard mkdir(path, 0o755) == 0 || errno == EEXIST else { throw StoreError.cannotCreate(path, String(cString: strerror(errno))) }
    }

    /// Returns the entry for `hash`, building it with `build(tmpDir)` when absent.
    public func realise(name: String, hash: String,
                        build: @Sendable (String) async throws -> Void) async throws -> (path: String, reused: Bool) {
        if let p = lookup(name: name, hash: hash) { return (p, true) }
        let fm = FileManager.default
        try Self.makeDirectories(root)
        let tmp = "\(root)/.tmp-\(hash)-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try? fm.removeItem(atPath: tmp)
        guard mkdir(tmp, 0o755) == 0 else { throw StoreError.cannotCreate(tmp, String(cString: strerror(errno))) }
        let final = path(name: name, hash: hash)
        do {
            try await build(tmp)
            // The rename is what makes the entry trusted: its contents must be on disk first.
            try Durable.syncFilesystem(of: tmp)
            if rename(tmp, final) != 0 {
                let err = errno
                if Durable.isDanglingLink(final), unlink(final) == 0 || errno == ENOENT, rename(tmp, final) == 0 {
                    // An alias whose entry is gone stood in the way; the new entry replaces it.
                } else if lookup(name: name, hash: hash) != nil {
                    // Another build finished the same entry first: keep theirs.
                    try? fm.removeItem(atPath: tmp)
                    return (final, false)
                } else {
                    throw StoreError.cannotCreate(final, String(cString: strerror(err)))
                }
            }
            try Durable.sync(root)
        } catch {
            try? fm.removeItem(atPath: tmp)
            throw error
        }
        return (final, false)
    }

    /// Makes the entry at `path` also found under `hash` (a relative symbolic link in the store).
    /// Does nothing when an entry of that hash exists. A dangling link of that name is replaced.
    public nonisolated func alias(name: String, hash: String, to path: String) throws {
        let link = self.path(name: name, hash: hash)
        guard lookup(name: name, hash: hash) == nil, link != path else { return }
        let target = (path as NSString).lastPathComponent
        // Made beside and renamed over: rename never replaces a directory, so an entry that
        // another build put there meanwhile survives, and a dangling link is swapped in one step.
        let tmp = "\(root)/.tmp-link-\(hash)-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        guard symlink(target, tmp) == 0 else { throw StoreError.cannotCreate(link, String(cString: strerror(errno))) }
        if rename(tmp, link) != 0 {
            let err = errno
            unlink(tmp)
            if lookup(name: name, hash: hash) == nil { throw StoreError.cannotCreate(link, String(cString: strerror(err))) }
            return
        }
        try Durable.sync(root)
    }

    /// Removes what interrupted builds left in the store (temporary entries and links) whose
    /// process is gone.
    public func collectGarbage() {
        Leftovers.collect(in: root)
    }
}

/// The few system calls that make a rename safe across a power loss, and the renames that
/// Swift's Glibc module does not import.
public enum Durable {
    /// fsync(2) of one file or folder.
    public static func sync(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw StoreError.cannotSync(path, String(cString: strerror(errno))) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw StoreError.cannotSync(path, String(cString: strerror(errno))) }
    }

    /// Flushes the whole filesystem that holds `path` (syncfs(2)): one call for a tree of
    /// thousands of files, where an fsync each would cost a journal commit each.
    public static func syncFilesystem(of path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw StoreError.cannotSync(path, String(cString: strerror(errno))) }
        defer { close(fd) }
        if let syncfs = LibC.syncfs {
            guard syncfs(fd) == 0 else { throw StoreError.cannotSync(path, String(cString: strerror(errno))) }
        } else {
            Glibc.sync()
        }
    }

    /// Swaps `a` and `b` in one step (renameat2 RENAME_EXCHANGE): whoever looks at either path
    /// sees one of the two, never nothing. False when the filesystem or kernel cannot (EINVAL,
    /// ENOSYS, EOPNOTSUPP): the caller falls back to two renames.
    public static func exchange(_ a: String, _ b: String) throws -> Bool {
        guard let renameat2 = LibC.renameat2 else { return false }
        if renameat2(AT_FDCWD, a, AT_FDCWD, b, LibC.renameExchange) == 0 { return true }
        let err = errno
        if [EINVAL, ENOSYS, EOPNOTSUPP].contains(err) { return false }
        throw StoreError.cannotCreate(b, "cannot exchange it with \(a): \(String(cString: strerror(err)))")
    }

    /// Renames `from` to `to` only when nothing is at `to` (renameat2 RENAME_NOREPLACE); where
    /// that is not supported, a check then a rename (a race with another writer remains there).
    /// Returns false when `to` exists.
    public static func renameNoReplace(_ from: String, _ to: String) throws -> Bool {
        if let renameat2 = LibC.renameat2 {
            if renameat2(AT_FDCWD, from, AT_FDCWD, to, LibC.renameNoReplace) == 0 { return true }
            let err = errno
            if err == EEXIST { return false }
            if ![EINVAL, ENOSYS, EOPNOTSUPP].contains(err) {
                throw StoreError.cannotCreate(to, String(cString: strerror(err)))
            }
        }
        var st = stat()
        if lstat(to, &st) == 0 { return false }
        guard rename(from, to) == 0 else { throw StoreError.cannotCreate(to, String(cString: strerror(errno))) }
        return true
    }

    /// True when `path` is a symbolic link whose target does not exist.
    public static func isDanglingLink(_ path: String) -> Bool {
        var st = stat()
        guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFLNK else { return false }
        return stat(path, &st) != 0 && errno == ENOENT
    }

    /// glibc has these (2.28+) but declares them only under _GNU_SOURCE, which Swift's Glibc
    /// module does not set; they are looked up once in the C library already loaded.
    private enum LibC {
        typealias Renameat2 = @convention(c) (Int32, UnsafePointer<CChar>, Int32, UnsafePointer<CChar>, UInt32) -> Int32
        typealias Syncfs = @convention(c) (Int32) -> Int32
        static let renameNoReplace: UInt32 = 1 // RENAME_NOREPLACE, <linux/fs.h>
        static let renameExchange: UInt32 = 2  // RENAME_EXCHANGE
        // RTLD_DEFAULT is a null handle in glibc: search the global scope.
        static let renameat2: Renameat2? = dlsym(nil, "renameat2").map { unsafeBitCast($0, to: Renameat2.self) }
        static let syncfs: Syncfs? = dlsym(nil, "syncfs").map { unsafeBitCast($0, to: Syncfs.self) }
    }
}

/// Temporary files and folders nxc leaves when it is killed, and their removal once the
/// process that made them is gone. The names carry that process's PID:
/// `.NAME.tmp-PID` and `.NAME.old-PID` (build folders, `writeAtomically`, `nxc init`,
/// `nxc export`) and `.tmp-…-PID-RANDOM` (store entries and links).
public enum Leftovers {
    /// The PID in a name of one of the forms above, or nil for any other name.
    public static func pid(inName n: String) -> pid_t? {
        guard n.hasPrefix(".") else { return nil }
        if n.hasPrefix(".tmp-") {
            let parts = n.split(separator: "-")
            guard parts.count >= 4, UInt32(parts[parts.count - 1]) != nil else { return nil }
            return pid_t(parts[parts.count - 2])
        }
        for marker in [".tmp-", ".old-"] {
            guard let r = n.range(of: marker, options: .backwards), r.lowerBound > n.index(after: n.startIndex) else { continue }
            let digits = n[r.upperBound...]
            guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { continue }
            return pid_t(digits)
        }
        return nil
    }

    /// True when no process `pid` exists. A process of another user (EPERM) is alive: its
    /// temporary files are not ours to remove.
    public static func processIsGone(_ pid: pid_t) -> Bool {
        guard pid > 0 else { return false }
        return kill(pid, 0) != 0 && errno == ESRCH
    }

    /// Removes, in `directory`, the leftovers whose process is gone; with `name`, only those
    /// made for that name (`.NAME.tmp-PID`, `.NAME.old-PID`).
    public static func collect(in directory: String, name: String? = nil) {
        let fm = FileManager.default
        guard let names = try? fm.contentsOfDirectory(atPath: directory) else { return }
        for n in names {
            if let name, !(n.hasPrefix(".\(name).tmp-") || n.hasPrefix(".\(name).old-")) { continue }
            guard let pid = pid(inName: n), processIsGone(pid) else { continue }
            try? fm.removeItem(atPath: directory + "/" + n)
        }
    }
}
