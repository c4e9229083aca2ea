import Foundation

/// Errors of the content-addressed store, with the path involved.
public enum StoreError: Error, CustomStringConvertible {
    case unreadable(String)
    case cannotCreate(String, String)

    public var description: String {
        switch self {
        case .unreadable(let p): return "cannot read \(p)"
        case .cannotCreate(let p, let why): return "cannot create store entry \(p): \(why)"
        }
    }
}

/// A content-addressed store: each entry is a directory named `<hash>-<name>`, built in a
/// temporary directory and renamed into place, so an interrupted build never leaves an entry
/// that a later build would trust.
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

    /// Returns the entry for `hash`, building it with `build(tmpDir)` when absent.
    public func realise(name: String, hash: String,
                        build: @Sendable (String) async throws -> Void) async throws -> (path: String, reused: Bool) {
        if let p = lookup(name: name, hash: hash) { return (p, true) }
        let fm = FileManager.default
        do { try fm.createDirectory(atPath: root, withIntermediateDirectories: true) }
        catch { throw StoreError.cannotCreate(root, "\(error)") }
        let tmp = "\(root)/.tmp-\(hash)-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try? fm.removeItem(atPath: tmp)
        do { try fm.createDirectory(atPath: tmp, withIntermediateDirectories: false) }
        catch { throw StoreError.cannotCreate(tmp, "\(error)") }
        do {
            try await build(tmp)
        } catch {
            try? fm.removeItem(atPath: tmp)
            throw error
        }
        let final = path(name: name, hash: hash)
        if rename(tmp, final) != 0 {
            // Another build finished the same entry first: keep theirs.
            try? fm.removeItem(atPath: tmp)
            if lookup(name: name, hash: hash) == nil {
                throw StoreError.cannotCreate(final, String(cString: strerror(errno)))
            }
        }
        return (final, false)
    }

    /// Makes the entry at `path` also found under `hash` (a relative symbolic link in the store).
    /// Does nothing when an entry of that hash exists.
    public nonisolated func alias(name: String, hash: String, to path: String) throws {
        let link = self.path(name: name, hash: hash)
        guard lookup(name: name, hash: hash) == nil, link != path else { return }
        try? FileManager.default.removeItem(atPath: link) // a dangling link
        let target = (path as NSString).lastPathComponent
        if symlink(target, link) != 0, lookup(name: name, hash: hash) == nil {
            throw StoreError.cannotCreate(link, String(cString: strerror(errno)))
        }
    }

    /// Removes temporary directories left by interrupted builds.
    public func collectGarbage() {
        let fm = FileManager.default
        guard let names = try? fm.contentsOfDirectory(atPath: root) else { return }
        for n in names where n.hasPrefix(".tmp-") {
            // Only remove those whose builder process is gone.
            let parts = n.split(separator: "-")
            if parts.count >= 5, let pid = Int32(parts[parts.count - 2]), kill(pid, 0) == 0, pid != getpid() { continue }
            try? fm.removeItem(atPath: "\(root)/\(n)")
        }
    }
}
