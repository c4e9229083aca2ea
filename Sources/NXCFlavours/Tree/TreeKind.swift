import Foundation
import NXCArchive
import NXCBuild
import NXCStore

/// A system tree for container managers that boot a directory (systemd-nspawn): the system as one
/// tar (packages; cached in the store, zstd) and nxc's payload as another (agent, units, role
/// files), unpacked in that order into one folder. Owners, modes and times are fixed, entries in a
/// fixed order: identical inputs give identical bytes. No kernel: the host's runs the nodes.
public struct TreeKind: ArtefactKind {
    public var name: String { "tree" }
    public init() {}
    static let recipeVersion = "1"
    static let systemName = "system.tar.zst"
    static let payloadName = "payload.tar"

    /// Paths (inside the tree) a booted directory does not need from the build: what is mounted at
    /// run time, a kernel's boot files, apt's stale lists, documentation.
    static func excluded(_ path: String) -> Bool {
        for dir in ["/dev", "/proc", "/sys", "/run", "/tmp", "/boot"] where path.hasPrefix(dir + "/") { return true }
        if path.hasPrefix("/var/lib/apt/lists/") { return path != "/var/lib/apt/lists/partial" }
        return ["/usr/share/doc/", "/usr/share/man/", "/usr/share/info/"].contains { path.hasPrefix($0) }
    }

    /// The system archive, cached in the store under the root filesystem's hash.
    func systemArchive(_ ctx: ArtefactContext) async throws -> String {
        var h = InputHash("tree-system")
        h.add("recipe", Self.recipeVersion)
        h.add("rootfs", ctx.rootfs.hash)
        let hash = h.finalize()
        if let p = ctx.store.lookup(name: "tree-system", hash: hash) {
            ctx.progress("system tree archive: reused")
            return p + "/" + Self.systemName
        }
        ctx.progress("system tree archive: packing \(ctx.rootfs.root) (tar, zstd)")
        let started = Date()
        let root = ctx.rootfs.root
        let ownership = try ctx.rootfs.ownershipRecord()
        let entry = try await ctx.store.realise(name: "tree-system", hash: hash) { tmp in
            let w = try ArchiveWriter(path: tmp + "/" + Self.systemName, format: .pax, filter: .zstd(level: 3))
            try w.addTree(root, ownership: ownership) { !Self.excluded($0) }
            try w.finish()
        }
        ctx.progress(String(format: "system tree archive: packed in %.1f s", Date().timeIntervalSince(started)))
        return entry.path + "/" + Self.systemName
    }

    public func emit(_ ctx: ArtefactContext) async throws -> [Artefact] {
        let system = try await systemArchive(ctx)
        let out = ctx.outputDirectory
        try FileManager.default.copyItem(atPath: system, toPath: out + "/" + Self.systemName)
        let w = try ArchiveWriter(path: out + "/" + Self.payloadName, format: .pax, filter: .none)
        try ctx.payload.write(into: w, over: ctx.rootfs.root)
        try w.finish()
        return [try Artefact(path: out + "/" + Self.systemName), try Artefact(path: out + "/" + Self.payloadName)]
    }
}
