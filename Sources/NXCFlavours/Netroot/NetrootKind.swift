import Foundation
import NXCArchive
import NXCBuild
import NXCStore

/// A system served read-only over the network (the `nfs-store` flavour), and the small bundle that
/// boots a node from it:
/// - `system.tar.zst`: the system tree (packages, the flavour's kernel modules; cached in the store),
///   unpacked once on the store server under its store hash (`netroot.json` names it), so that two
///   builds sit side by side there;
/// - `kernel` and `initrd`: busybox, the NIC/NFS/overlay modules and /init (one segment, cached),
///   then nxc's agent and the composition's payload (two segments, under /payload, copied onto the
///   node's writable layer at boot): `initrd.payload` is that last segment, as for the ramdisk kind.
public struct NetrootKind: ArtefactKind {
    public var name: String { "netroot" }
    public init() {}
    /// The modules, firmware and keep_kernel keys, read as the ramdisk kind reads them.
    public var settingsType: any FlavourSettings.Type { RamdiskSettings.self }
    static let recipeVersion = "1"
    /// The initrd's first segment: 2 since it leaves disk, InfiniBand and other filesystems' modules out.
    static let bootRecipeVersion = "2"

    /// The initrd only needs to reach the store: of the flavour's modules it leaves out disk
    /// controllers, InfiniBand and filesystems other than NFS and overlay (the tree has them all,
    /// and udev loads them from there). Their dependencies come with the ones kept.
    static let notInInitrd = ["kernel/drivers/scsi/", "kernel/drivers/ata/", "kernel/drivers/nvme/", "kernel/drivers/block/",
                              "kernel/drivers/infiniband/", "kernel/fs/"]
    static let fsInInitrd = ["kernel/fs/nfs/", "kernel/fs/overlayfs/"]

    static func initrdModules(_ wanted: [String], kernel: KernelModules) throws -> [String] {
        let files = try kernel.files(of: wanted.filter { !$0.hasSuffix("/") })
        return wanted.filter { w in
            guard !w.hasSuffix("/") else { return false }
            guard let f = files[w.replacingOccurrences(of: "-", with: "_")] else { return true }
            return fsInInitrd.contains { f.hasPrefix($0) } || !notInInitrd.contains { f.hasPrefix($0) }
        }
    }
    public static let systemName = "system.tar.zst"
    /// What a start needs to know about the tree: `{"tree": HASH, "archive": NAME, "sha256": …, "size": …}`.
    public static let describeName = "netroot.json"

    public struct Description: Codable, Sendable, Equatable {
        /// The folder name of this tree on the store server (the store entry's hash).
        public var tree: String
        public var archive: String
        public var sha256: String
        public var size: Int64
    }

    /// The tree as the nodes see it: the ramdisk's selection (kept modules with their regenerated
    /// metadata, wanted firmware, the kernel when keep_kernel), as a tar for the store server.
    func systemArchive(_ ctx: ArtefactContext, kernel: KernelModules) async throws -> (path: String, hash: String) {
        let settings = ctx.flavour.settings(as: RamdiskSettings.self)
        var h = InputHash("netroot-system")
        h.add("recipe", Self.recipeVersion)
        h.add("rootfs", ctx.rootfs.hash)
        h.add("modules", settings.modules)
        h.add("firmware", settings.firmware)
        if settings.keepKernel { h.add("keep_kernel", "yes") }
        let hash = h.finalize()
        if let p = ctx.store.lookup(name: "netroot-system", hash: hash) {
            ctx.progress("system tree archive: reused")
            return (p + "/" + Self.systemName, hash)
        }
        ctx.progress("system tree archive: packing \(ctx.rootfs.root) (tar, zstd)")
        let started = Date()
        let root = ctx.rootfs.root
        let ownership = try ctx.rootfs.ownershipRecord()
        let entry = try await ctx.store.realise(name: "netroot-system", hash: hash) { tmp in
            let kept = try kernel.select(settings.modules)
            let meta = try kernel.regenerateMetadata(kept: kept, in: tmp + "/modules")
            let prefix = "/usr/lib/modules/\(kernel.version)"
            let keptSet = Set(kept)
            let w = try ArchiveWriter(path: tmp + "/" + Self.systemName, format: .pax, filter: .zstd(level: 3))
            try w.addTree(root, ownership: ownership) {
                !RamdiskKind.excluded($0, modulesPrefix: prefix, kept: keptSet, firmware: settings.firmware, keepKernel: settings.keepKernel)
            }
            for n in try FileManager.default.contentsOfDirectory(atPath: meta).filter({ $0.hasPrefix("modules.") }).sorted() {
                try w.addFile(prefix + "/" + n, contentsOf: meta + "/" + n, mode: 0o644)
            }
            try w.finish()
            try FileManager.default.removeItem(atPath: tmp + "/modules")
        }
        ctx.progress(String(format: "system tree archive: packed in %.1f s", Date().timeIntervalSince(started)))
        return (entry.path + "/" + Self.systemName, hash)
    }

    /// The initrd's first segment: busybox, /init, the flavour's modules (and their dependencies)
    /// under /lib/modules, and the wanted firmware. Cached in the store.
    func bootSegment(_ ctx: ArtefactContext, kernel: KernelModules) async throws -> String {
        let settings = ctx.flavour.settings(as: RamdiskSettings.self)
        let root = ctx.rootfs.root
        let busybox = ["/usr/bin/busybox", "/bin/busybox"].map { root + $0 }.first { FileManager.default.isExecutableFile(atPath: $0) }
        let status = (try? String(contentsOfFile: root + "/var/lib/dpkg/status", encoding: .utf8)) ?? ""
        guard let busybox, status.contains("\nPackage: busybox-static\n") || status.hasPrefix("Package: busybox-static\n") else {
            throw BuildError.imageLacks("a static busybox (the netroot initrd's shell, mount and modprobe)", flavour: ctx.flavour.name,
                                        package: "busybox-static")
        }
        var h = InputHash("netroot-boot")
        h.add("recipe", Self.bootRecipeVersion)
        h.add("rootfs", ctx.rootfs.hash)
        h.add("modules", settings.modules)
        h.add("firmware", settings.firmware)
        h.add("init", NetrootInit.script)
        let hash = h.finalize()
        if let p = ctx.store.lookup(name: "netroot-boot", hash: hash) {
            ctx.progress("initrd boot segment: reused")
            return p + "/boot.cpio.zst"
        }
        let initrdModules = try Self.initrdModules(settings.modules, kernel: kernel)
        let entry = try await ctx.store.realise(name: "netroot-boot", hash: hash) { tmp in
            let kept = try kernel.select(initrdModules)
            _ = try kernel.regenerateMetadata(kept: kept, in: tmp + "/modules")
            // Built once per kernel and module list, sent to every node: worth zstd's slow levels.
            let w = try ArchiveWriter(path: tmp + "/boot.cpio.zst", format: .cpioNewc, filter: .zstd(level: 19))
            for d in ["bin", "dev", "etc", "etc/nxc-initrd", "lib", "lower", "newroot", "proc", "run", "rw", "sbin", "sys", "tmp",
                      "usr", "usr/bin", "usr/sbin"] {
                try w.addDirectory(d)
            }
            // The kernel opens /dev/console for /init before anything mounts /dev.
            try w.addDevice("dev/console", character: true, major: 5, minor: 1, mode: 0o600)
            try w.addFile("bin/busybox", contentsOf: busybox, mode: 0o755)
            try w.addFile("init", bytes: Array(NetrootInit.script.utf8), mode: 0o755)
            // Loaded in this order by /init; names absent from modules.dep are built in.
            try w.addFile("etc/nxc-initrd/modules", bytes: Array(initrdModules.map { $0 + "\n" }.joined().utf8))
            try w.addTree(tmp + "/modules")
            try Self.addFirmware(w, root: root, wanted: settings.firmware)
            try w.finish()
            try FileManager.default.removeItem(atPath: tmp + "/modules")
        }
        return entry.path + "/boot.cpio.zst"
    }

    /// The firmware files the flavour wants (folders or files under /usr/lib/firmware), under /lib/firmware.
    static func addFirmware(_ w: ArchiveWriter, root: String, wanted: [String]) throws {
        let base = root + "/usr/lib/firmware"
        guard !wanted.isEmpty, let walker = FileManager.default.enumerator(atPath: base) else { return }
        var files: [String] = []
        while let rel = walker.nextObject() as? String {
            if wanted.contains(where: { rel.hasPrefix($0) || rel + "/" == $0 }) { files.append(rel) }
        }
        var dirs = Set<String>()
        try w.addDirectory("lib/firmware")
        for rel in files.sorted() {
            var st = stat()
            guard lstat(base + "/" + rel, &st) == 0 else { continue }
            var parent = "lib/firmware"
            for c in rel.split(separator: "/").dropLast() {
                parent += "/" + c
                if dirs.insert(parent).inserted { try w.addDirectory(parent) }
            }
            switch st.st_mode & S_IFMT {
            case S_IFDIR: if dirs.insert("lib/firmware/" + rel).inserted { try w.addDirectory("lib/firmware/" + rel) }
            case S_IFREG: try w.addFile("lib/firmware/" + rel, contentsOf: base + "/" + rel, mode: 0o644)
            case S_IFLNK:
                if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: base + "/" + rel) {
                    try w.addSymlink("lib/firmware/" + rel, target: target)
                }
            default: break
            }
        }
    }

    public func emit(_ ctx: ArtefactContext) async throws -> [Artefact] {
        let kernel = try KernelModules(root: ctx.rootfs.root)
        let (system, tree) = try await systemArchive(ctx, kernel: kernel)
        let boot = try await bootSegment(ctx, kernel: kernel)
        let out = ctx.outputDirectory
        let fm = FileManager.default
        let archive = out + "/" + Self.systemName
        if link(system, archive) != 0 { try fm.copyItem(atPath: system, toPath: archive) }
        // initrd = boot segment + agent segment + payload segment (both under /payload).
        let (agent, rest) = ctx.payload.splitAgent()
        let agentPath = out + "/.agent.cpio.zst"
        let payloadPath = out + "/" + RamdiskKind.payloadFile
        // Every node gets the agent's segment: zstd -19 makes it 0.55 MB smaller for 2.5 s of build.
        try RamdiskKind.writePayloadSegment(agent.under(NetrootInit.payloadDir), root: ctx.rootfs.root, to: agentPath, level: 19)
        try RamdiskKind.writePayloadSegment(rest.under(NetrootInit.payloadDir), root: ctx.rootfs.root, to: payloadPath)
        defer { try? fm.removeItem(atPath: agentPath) }
        try RamdiskKind.concatenate([boot, agentPath, payloadPath], into: out + "/initrd")
        try fm.copyItem(atPath: kernel.kernelPath, toPath: out + "/kernel")
        let archived = try Artefact(path: archive)
        let description = Description(tree: tree, archive: Self.systemName, sha256: archived.sha256, size: archived.size)
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .prettyPrinted]
        try (try enc.encode(description) + Data("\n".utf8)).write(to: URL(fileURLWithPath: out + "/" + Self.describeName))
        ctx.progress("system tree \(tree): \(archived.size >> 20) MiB compressed, for the store server")
        return [try Artefact(path: out + "/kernel"), try Artefact(path: out + "/initrd"), try Artefact(path: payloadPath), archived,
                try Artefact(path: out + "/" + Self.describeName)]
    }
}
