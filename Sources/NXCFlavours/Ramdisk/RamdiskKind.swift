import Foundation
import NXCArchive
import NXCBuild
import NXCStore

/// Kernel + initrd holding the whole system. The initrd is two concatenated cpio archives: the
/// system (packages, pruned kernel modules; cached in the store) and a small segment with the
/// agent and the composition's files, so editing a file does not repack the system.
public struct RamdiskKind: ArtefactKind {
    public var name: String { "ramdisk" }
    public init() {}
    public var settingsType: any FlavourSettings.Type { RamdiskSettings.self }
    static let recipeVersion = "5"

    /// Paths (absolute, inside the image) that a ramdisk does not carry.
    static func excluded(_ path: String, modulesPrefix: String, kept: Set<String>, firmware: [String] = [],
                         keepKernel: Bool = false) -> Bool {
        if keepKernel, path.hasPrefix("/boot/vmlinuz") { return false }
        if !firmware.isEmpty, path.hasPrefix("/usr/lib/firmware/") {
            let rel = path.dropFirst("/usr/lib/firmware/".count)
            // Keep the wanted files, the folders leading to them, and everything under wanted folders.
            return !firmware.contains { w in rel.hasPrefix(w) || (w.hasPrefix(rel + "/")) }
        }
        if path.hasPrefix(modulesPrefix + "/") {
            let rel = String(path.dropFirst(modulesPrefix.count + 1))
            if rel.hasPrefix("modules.") { return true } // regenerated for the kept set
            if rel.hasPrefix("kernel/") && (rel.hasSuffix(".ko") || rel.hasSuffix(".ko.xz") || rel.hasSuffix(".ko.zst")) {
                return !kept.contains(rel)
            }
            return false
        }
        // apt's package lists are large and stale by the time a node boots; keep the folder apt expects.
        if path.hasPrefix("/var/lib/apt/lists/") { return path != "/var/lib/apt/lists/partial" }
        for prefix in ["/boot/initrd.img", "/boot/vmlinuz", "/boot/System.map", "/usr/share/doc/", "/usr/share/man/",
                       "/usr/share/info/"] where path.hasPrefix(prefix) {
            return true
        }
        return false
    }

    func systemSegment(_ ctx: ArtefactContext, kernel: KernelModules) async throws -> String {
        var h = InputHash("ramdisk-system")
        h.add("recipe", Self.recipeVersion)
        h.add("rootfs", ctx.rootfs.hash)
        let settings = ctx.flavour.settings(as: RamdiskSettings.self)
        h.add("modules", settings.modules)
        h.add("firmware", settings.firmware)
        if settings.keepKernel { h.add("keep_kernel", "yes") }
        let hash = h.finalize()
        if let p = ctx.store.lookup(name: "initrd-system", hash: hash) {
            ctx.progress("initrd system segment: reused")
            return p + "/system.cpio.zst"
        }
        ctx.progress("initrd system segment: packing \(ctx.rootfs.root) (cpio newc, zstd)")
        let started = Date()
        let root = ctx.rootfs.root
        let modules = settings.modules
        let firmware = settings.firmware
        let keepKernel = settings.keepKernel
        let ownership = try ctx.rootfs.ownershipRecord()
        let entry = try await ctx.store.realise(name: "initrd-system", hash: hash) { tmp in
            let kept = try kernel.select(modules)
            let meta = try kernel.regenerateMetadata(kept: kept, in: tmp + "/modules")
            let prefix = "/usr/lib/modules/\(kernel.version)"
            let keptSet = Set(kept)
            let w = try ArchiveWriter(path: tmp + "/system.cpio.zst", format: .cpioNewc, filter: .zstd(level: 6))
            try w.addTree(root, ownership: ownership) { !Self.excluded($0, modulesPrefix: prefix, kept: keptSet, firmware: firmware, keepKernel: keepKernel) }
            let names = try FileManager.default.contentsOfDirectory(atPath: meta).filter { $0.hasPrefix("modules.") }.sorted()
            for n in names { try w.addFile(prefix + "/" + n, contentsOf: meta + "/" + n, mode: 0o644) }
            // The kernel runs /init from the initramfs: systemd directly, no intermediate init.
            try w.addSymlink("/init", target: "/usr/lib/systemd/systemd")
            try w.finish()
            try FileManager.default.removeItem(atPath: tmp + "/modules")
            try Data("\(kernel.version)\n\(kept.count) modules\n".utf8).write(to: URL(fileURLWithPath: tmp + "/info"))
        }
        ctx.progress(String(format: "initrd system segment: packed in %.1f s", Date().timeIntervalSince(started)))
        return entry.path + "/system.cpio.zst"
    }

    /// The initrd's last segment, as a file of its own in the build folder.
    public static let payloadFile = "initrd.payload"

    /// The per-composition segment: agent, units, role files. Small; rebuilt on every build.
    static func writePayloadSegment(_ payload: ImagePayload, root: String, to path: String, level: Int = 3) throws {
        let w = try ArchiveWriter(path: path, format: .cpioNewc, filter: .zstd(level: level))
        try payload.write(into: w, over: root)
        try w.finish()
    }

    /// Writes `parts` one after the other into `path` (the kernel unpacks an initrd's segments in order).
    static func concatenate(_ parts: [String], into path: String) throws {
        FileManager.default.createFile(atPath: path, contents: nil)
        guard let fh = FileHandle(forWritingAtPath: path) else { throw BuildError.file("write", path: path, reason: "cannot open it") }
        defer { try? fh.close() }
        for part in parts {
            guard let src = FileHandle(forReadingAtPath: part) else { throw BuildError.file("read", path: part, reason: "cannot open it") }
            while true {
                let chunk = src.readData(ofLength: 8 << 20)
                if chunk.isEmpty { break }
                fh.write(chunk)
            }
            try src.close()
        }
        try fh.close()
    }

    public func emit(_ ctx: ArtefactContext) async throws -> [Artefact] {
        let kernel = try KernelModules(root: ctx.rootfs.root)
        let system = try await systemSegment(ctx, kernel: kernel)
        let out = ctx.outputDirectory
        // initrd = system segment + agent segment + payload segment; the kernel unpacks them in order.
        // The payload is kept beside the initrd, whose tail it is: a host that holds the same first
        // two segments (a node started with --reuse, a host with an earlier bundle) needs only it.
        let (agent, rest) = ctx.payload.splitAgent()
        let agentPath = out + "/.agent.cpio.zst"
        let payloadPath = out + "/" + Self.payloadFile
        try Self.writePayloadSegment(agent, root: ctx.rootfs.root, to: agentPath)
        try Self.writePayloadSegment(rest, root: ctx.rootfs.root, to: payloadPath)
        defer { try? FileManager.default.removeItem(atPath: agentPath) }
        let initrd = out + "/initrd"
        try Self.concatenate([system, agentPath, payloadPath], into: initrd)
        try FileManager.default.copyItem(atPath: kernel.kernelPath, toPath: out + "/kernel")
        return [try Artefact(path: out + "/kernel"), try Artefact(path: initrd), try Artefact(path: payloadPath)]
    }
}
