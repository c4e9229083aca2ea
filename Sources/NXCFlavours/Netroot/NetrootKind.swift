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
    /// 2 since the tree carries nxc's agent (the initrd does not: every node reads it from the store).
    static let recipeVersion = "2"
    /// The initrd's segments: 2 since it leaves disk, InfiniBand and other filesystems' modules out;
    /// 3 since the NIC drivers are segments of their own, with only the firmware their modules declare;
    /// 4 since /init mounts a squashfs image of the tree from a store folder; 5 since NIC segments
    /// add up (the core's metadata lists every NIC driver; each segment its own list).
    static let bootRecipeVersion = "5"

    /// The initrd only needs to reach the store: of the flavour's modules it leaves out disk
    /// controllers, InfiniBand and filesystems other than NFS and overlay (the tree has them all,
    /// and udev loads them from there). Their dependencies come with the ones kept.
    static let notInInitrd = ["kernel/drivers/scsi/", "kernel/drivers/ata/", "kernel/drivers/nvme/", "kernel/drivers/block/",
                              "kernel/drivers/infiniband/", "kernel/fs/"]
    /// Kept whatever the lists above say: NFS, overlay, and squashfs with the loop device (a store
    /// folder's image).
    static let fsInInitrd = ["kernel/fs/nfs/", "kernel/fs/overlayfs/", "kernel/fs/squashfs/", "kernel/drivers/block/loop.ko"]

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
        // nxc's agent is part of the tree (the same for every composition until nxc-agent changes).
        let agent = ctx.payload.entries.compactMap { e -> String? in
            if case .fileFromDisk(ImagePayload.agentPath, let source, _) = e { return source } else { return nil }
        }.first
        if let agent { h.add("agent", try sha256(file: agent)) }
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
            if let agent { try w.addFile(ImagePayload.agentPath, contentsOf: agent, mode: 0o755) }
            try w.finish()
            try FileManager.default.removeItem(atPath: tmp + "/modules")
        }
        ctx.progress(String(format: "system tree archive: packed in %.1f s", Date().timeIntervalSince(started)))
        return (entry.path + "/" + Self.systemName, hash)
    }

    /// Where the NIC segments are, in the store entry and the build folder: `nic/<module>.cpio.zst`
    /// (one NIC driver with what it needs beyond the core: modules, their metadata, the firmware
    /// they declare), `nic/all.cpio.zst` (every NIC driver of the flavour), `nic/aliases` (PCI IDs →
    /// module, from the kernel's modules.alias).
    public static let nicDir = "nic"
    /// The initrd's folder of NIC segments' module lists (/etc/nxc-initrd/modules.nic.d/NAME).
    static let nicListDir = "modules.nic.d"
    public static let allNICs = "all"
    public static let aliasesName = "aliases"
    /// The initrd without NIC drivers (core, then payload): a machine booting with iPXE gets it and
    /// only its own NIC's segment after it (`nic/<busid>` on nxc's server).
    public static let baseInitrd = "initrd.base"
    /// In the build folder: `nic-<module>.cpio.zst`, `nic-all.cpio.zst`, `nic.aliases`.
    public static func nicFile(_ module: String) -> String { "nic-\(module).cpio.zst" }
    public static let aliasesFile = "nic.aliases"

    /// The initrd's segments: the core (busybox, /init, NFS and overlay modules with their metadata),
    /// and one segment per NIC driver plus one with all of them. Cached in the store.
    func bootSegments(_ ctx: ArtefactContext, kernel: KernelModules) async throws -> String {
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
            ctx.progress("initrd boot segments: reused")
            return p
        }
        let initrdModules = try Self.initrdModules(settings.modules, kernel: kernel)
        let files = try kernel.files(of: initrdModules)
        let nics = initrdModules.filter { files[$0.replacingOccurrences(of: "-", with: "_")]?.hasPrefix("kernel/drivers/net/") ?? false }
        let coreNames = initrdModules.filter { !nics.contains($0) }
        let entry = try await ctx.store.realise(name: "netroot-boot", hash: hash) { tmp in
            let core = try kernel.select(coreNames)
            // The metadata (modules.dep, …) covers every NIC driver too, whose files come in the NIC
            // segments: any of them can follow the core, alone or several together.
            let allNICModules = try kernel.select(nics)
            let coreFiles = Set(core)
            _ = try kernel.regenerateMetadata(kept: Array(coreFiles.union(allNICModules)).sorted(), in: tmp + "/modules")
            let modulesPrefix = "/lib/modules/\(kernel.version)/"
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
            // Loaded in this order by /init (after the NIC segments' lists); names absent from modules.dep are built in.
            try w.addFile("etc/nxc-initrd/modules", bytes: Array(coreNames.map { $0 + "\n" }.joined().utf8))
            try w.addDirectory("etc/nxc-initrd/" + Self.nicListDir)
            try w.addTree(tmp + "/modules") { r in
                guard r.hasPrefix(modulesPrefix), r.hasSuffix(".ko") else { return true }
                return coreFiles.contains(String(r.dropFirst(modulesPrefix.count)))
            }
            try w.finish()
            try FileManager.default.removeItem(atPath: tmp + "/modules")
            try FileManager.default.createDirectory(atPath: tmp + "/" + Self.nicDir, withIntermediateDirectories: true)
            for (name, list) in nics.map({ ($0.replacingOccurrences(of: "-", with: "_"), [$0]) }) + [(Self.allNICs, nics)] {
                try Self.writeNICSegment(tmp + "/\(Self.nicDir)/\(name).cpio.zst", name: name, nics: list, core: core, kernel: kernel,
                                         root: root, wanted: settings.firmware, scratch: tmp + "/scratch")
            }
            try Data(Self.nicAliases(kernel: kernel, nics: nics).utf8).write(to: URL(fileURLWithPath: tmp + "/\(Self.nicDir)/\(Self.aliasesName)"))
        }
        return entry.path
    }

    /// One NIC segment: the drivers' modules beyond the core's (the core's metadata already lists
    /// them), their list for /init (`modules.nic.d/NAME`: segments add up, in any number), the
    /// firmware they declare.
    static func writeNICSegment(_ path: String, name: String, nics: [String], core: [String], kernel: KernelModules, root: String,
                                wanted: [String], scratch: String) throws {
        let closure = try kernel.select(nics)
        let own = Set(closure).subtracting(Set(core))
        let meta = try kernel.regenerateMetadata(kept: closure, in: scratch)
        let prefix = "/lib/modules/\(kernel.version)/"
        let w = try ArchiveWriter(path: path, format: .cpioNewc, filter: .zstd(level: 19))
        try w.addDirectory("etc")
        try w.addDirectory("etc/nxc-initrd")
        try w.addDirectory("etc/nxc-initrd/" + nicListDir)
        try w.addFile("etc/nxc-initrd/\(nicListDir)/\(name)", bytes: Array(nics.map { $0 + "\n" }.joined().utf8))
        try w.addTree(scratch) { r in
            guard r.hasPrefix(prefix) else { return true }
            let sub = String(r.dropFirst(prefix.count))
            var dir: ObjCBool = false
            _ = FileManager.default.fileExists(atPath: scratch + r, isDirectory: &dir)
            return dir.boolValue || own.contains(sub)
        }
        let firmware = own.sorted().flatMap { declaredFirmware(meta + "/" + $0) }
        try addFirmware(w, root: root, files: firmware.filter { f in wanted.contains { f.hasPrefix($0) || f == $0 } })
        try w.finish()
        try FileManager.default.removeItem(atPath: scratch)
    }

    /// The firmware files a module declares (`firmware=` strings of its .modinfo section).
    static func declaredFirmware(_ path: String) -> [String] {
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        let needle = Array("\0firmware=".utf8)
        var out: [String] = []
        data.withUnsafeBytes { (b: UnsafeRawBufferPointer) in
            let n = b.count
            var i = 0
            while i + needle.count < n {
                // Each .modinfo string ends with a NUL: a match starts right after one.
                if b[i] == 0 && b[i + 1] == needle[1] {
                    var k = 1
                    while k < needle.count && b[i + k] == needle[k] { k += 1 }
                    if k == needle.count {
                        var j = i + k
                        let from = j
                        while j < n && b[j] != 0 { j += 1 }
                        if j > from { out.append(String(decoding: UnsafeRawBufferPointer(rebasing: b[from..<j]), as: UTF8.self)) }
                        i = j
                        continue
                    }
                }
                i += 1
            }
        }
        return out
    }

    /// `PATTERN MODULE` lines of the kernel's PCI aliases for the NIC drivers.
    static func nicAliases(kernel: KernelModules, nics: [String]) throws -> String {
        let names = Set(nics.map { $0.replacingOccurrences(of: "-", with: "_") })
        guard let text = try? String(contentsOfFile: kernel.modulesDir + "/modules.alias", encoding: .utf8) else {
            throw BuildError.file("read", path: kernel.modulesDir + "/modules.alias", reason: "missing or not text")
        }
        var lines: [String] = []
        for line in text.split(separator: "\n") {
            let f = line.split(separator: " ")
            guard f.count == 3, f[0] == "alias", names.contains(f[2].replacingOccurrences(of: "-", with: "_")) else { continue }
            if f[1].hasPrefix("pci:") {
                lines.append("\(f[1]) \(f[2])\n")
            } else if f[1].hasPrefix("virtio:d"), let id = Int(f[1].dropFirst("virtio:d".count).prefix(8), radix: 16) {
                // A virtio driver binds to a virtio device, which sits on a PCI device of vendor 1af4:
                // 0x1040 + its device ID (modern), and for a network card (ID 1) also 0x1000 (legacy).
                for pci in (id == 1 ? [0x1000] : []) + [0x1040 + id] {
                    lines.append(String(format: "pci:v00001AF4d%08Xsv*sd*bc*sc*i* %@\n", pci, String(f[2])))
                }
            }
        }
        return lines.joined()
    }

    /// Firmware files (relative to /usr/lib/firmware) under /lib/firmware, with their folders; a
    /// symbolic link comes with the file it points to.
    static func addFirmware(_ w: ArchiveWriter, root: String, files: [String]) throws {
        let base = root + "/usr/lib/firmware"
        var dirs = Set<String>()
        var done = Set<String>()
        func parents(_ rel: String) throws {
            var parent = "lib/firmware"
            if dirs.insert(parent).inserted { try w.addDirectory(parent) }
            for c in rel.split(separator: "/").dropLast() {
                parent += "/" + c
                if dirs.insert(parent).inserted { try w.addDirectory(parent) }
            }
        }
        func add(_ rel: String, depth: Int) throws {
            guard depth < 8, done.insert(rel).inserted else { return }
            var st = stat()
            guard lstat(base + "/" + rel, &st) == 0 else { return }
            switch st.st_mode & S_IFMT {
            case S_IFREG:
                try parents(rel)
                try w.addFile("lib/firmware/" + rel, contentsOf: base + "/" + rel, mode: 0o644)
            case S_IFLNK:
                guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: base + "/" + rel) else { return }
                try parents(rel)
                try w.addSymlink("lib/firmware/" + rel, target: target)
                let resolved = ((("/" + rel) as NSString).deletingLastPathComponent as NSString).appendingPathComponent(target)
                let normal = (resolved as NSString).standardizingPath
                if normal.hasPrefix("/"), !target.hasPrefix("/") { try add(String(normal.dropFirst()), depth: depth + 1) }
            default: break
            }
        }
        for f in files.sorted() { try add(f, depth: 0) }
    }

    public func emit(_ ctx: ArtefactContext) async throws -> [Artefact] {
        let kernel = try KernelModules(root: ctx.rootfs.root)
        let (system, tree) = try await systemArchive(ctx, kernel: kernel)
        let boot = try await bootSegments(ctx, kernel: kernel)
        let out = ctx.outputDirectory
        let fm = FileManager.default
        let archive = out + "/" + Self.systemName
        if link(system, archive) != 0 { try fm.copyItem(atPath: system, toPath: archive) }
        // The agent is in the tree: the initrd carries the rest of the payload (units, role files), under /payload.
        let (_, rest) = ctx.payload.splitAgent()
        let payloadPath = out + "/" + RamdiskKind.payloadFile
        try RamdiskKind.writePayloadSegment(rest.under(NetrootInit.payloadDir), root: ctx.rootfs.root, to: payloadPath)
        // initrd = core + every NIC driver + payload (kexec, pixiecore); initrd.base = core + payload, which
        // iPXE follows with the machine's own NIC segment (nic-<module>.cpio.zst, found by its PCI IDs).
        var nicFiles: [String] = []
        for f in try fm.contentsOfDirectory(atPath: boot + "/" + Self.nicDir).sorted() {
            let name = f == Self.aliasesName ? Self.aliasesFile : "nic-" + f
            if link(boot + "/\(Self.nicDir)/\(f)", out + "/" + name) != 0 { try fm.copyItem(atPath: boot + "/\(Self.nicDir)/\(f)", toPath: out + "/" + name) }
            nicFiles.append(out + "/" + name)
        }
        try RamdiskKind.concatenate([boot + "/boot.cpio.zst", out + "/" + Self.nicFile(Self.allNICs), payloadPath], into: out + "/initrd")
        try RamdiskKind.concatenate([boot + "/boot.cpio.zst", payloadPath], into: out + "/" + Self.baseInitrd)
        try fm.copyItem(atPath: kernel.kernelPath, toPath: out + "/kernel")
        let archived = try Artefact(path: archive)
        let description = Description(tree: tree, archive: Self.systemName, sha256: archived.sha256, size: archived.size)
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .prettyPrinted]
        try (try enc.encode(description) + Data("\n".utf8)).write(to: URL(fileURLWithPath: out + "/" + Self.describeName))
        ctx.progress("system tree \(tree): \(archived.size >> 20) MiB compressed, for the store server")
        return [try Artefact(path: out + "/kernel"), try Artefact(path: out + "/initrd"), try Artefact(path: out + "/" + Self.baseInitrd),
                try Artefact(path: payloadPath), archived, try Artefact(path: out + "/" + Self.describeName)] + (try nicFiles.map(Artefact.init(path:)))
    }
}
