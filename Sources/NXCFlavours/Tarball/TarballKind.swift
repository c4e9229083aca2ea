import Foundation
import NXCArchive
import NXCBuild
import NXCStore

/// A full system as one tarball (tar.zst, written with libarchive) for Kadeploy, and its
/// environment description. The tar keeps numeric owners, modes, extended attributes (file
/// capabilities) and fixed times, entries in a fixed order: identical inputs give identical bytes.
/// The image boots by itself: /boot holds the kernel and the initramfs Debian's initramfs-tools
/// made, the agent starts at boot and waits (`nxc.await=ssh`) until `nxc start` contextualises it.
public struct TarballKind: ArtefactKind {
    public var name: String { "tarball" }
    public init() {}
    public var settingsType: any FlavourSettings.Type { TarballSettings.self }
    /// zstd level of the tarball: level 10 packs a Debian system about as well as xz -6 in a third
    /// of the time on this machine, and decompresses at zstd speed on the nodes.
    static let zstdLevel = 10

    /// Paths a disk image does not carry: contents of what is mounted at boot, documentation,
    /// apt's stale lists.
    static func excluded(_ path: String) -> Bool {
        for dir in ["/dev", "/proc", "/sys", "/run", "/tmp"] where path.hasPrefix(dir + "/") { return true }
        if path.hasPrefix("/var/lib/apt/lists/") { return path != "/var/lib/apt/lists/partial" }
        // Records of the build itself (timestamps, caches keyed by inode): not part of the system.
        if path.hasPrefix("/var/log/"), path.hasSuffix(".log") || path.hasSuffix(".log.xz") { return true }
        if path == "/var/cache/ldconfig/aux-cache" { return true }
        if path.hasPrefix("/var/lib/dpkg/") || path.hasPrefix("/var/cache/debconf/"), path.hasSuffix("-old") { return true }
        for prefix in ["/usr/share/doc/", "/usr/share/man/", "/usr/share/info/"] where path.hasPrefix(prefix) { return true }
        return false
    }

    /// The Kadeploy environment description (kaenv3 YAML).
    static func environment(name: String, composition: String, flavour: String, tarball: String, kernel: String, initrd: String,
                            kernelParams: [String], author: String, settings: TarballSettings?) -> String {
        func q(_ s: String) -> String {
            "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
        }
        let post = settings?.postinstall ?? .init(archive: "server:///grid5000/postinstalls/g5k-postinstall.tgz",
                                                  compression: "gzip", script: "g5k-postinstall --net none")
        return """
            ---
            # Kadeploy environment of nxc composition '\(composition)', written by `nxc build -f \(flavour)`.
            # From this folder: kadeploy3 -a THIS_FILE -f MACHINES -k KEY.pub  (or: nxc start -f \(flavour) -m MACHINES)
            # The image path is relative to this folder, so that the folder can move (and two builds
            # anywhere give the same bytes); `nxc start` hands Kadeploy a copy with the absolute path.
            name: \(q(name))
            version: 1
            description: \(q("nxc composition \(composition): Debian with every role's packages; nxc start contextualises the nodes"))
            author: \(q(author))
            visibility: \(q(settings?.visibility ?? "private"))
            destructive: false
            os: linux
            arch: x86_64
            image:
              file: \(q(tarball))
              kind: tar
              compression: zstd
            postinstalls:
            - archive: \(q(post.archive))
              compression: \(q(post.compression))
              script: \(q(post.script))
            boot:
              kernel: \(q(kernel))
              initrd: \(q(initrd))
              kernel_params: \(q(kernelParams.joined(separator: " ")))
            filesystem: ext4
            partition_type: 131
            multipart: false

            """
    }

    public func emit(_ ctx: ArtefactContext) async throws -> [Artefact] {
        let root = ctx.rootfs.root
        let fm = FileManager.default
        let kernels = ((try? fm.contentsOfDirectory(atPath: root + "/boot")) ?? []).filter { $0.hasPrefix("vmlinuz-") }.sorted()
        guard let kernel = kernels.last else {
            throw BuildError.imageLacks("kernel in /boot", flavour: ctx.flavour.name, package: "linux-image-amd64")
        }
        let version = String(kernel.dropFirst("vmlinuz-".count))
        let initrd = "initrd.img-" + version
        guard fm.fileExists(atPath: root + "/boot/" + initrd) else {
            throw BuildError.imageLacks("/boot/\(initrd)", flavour: ctx.flavour.name, package: "initramfs-tools")
        }
        let name = ctx.composition.name
        let file = "\(name).tar.zst"
        let tarball = ctx.outputDirectory + "/" + file
        ctx.progress("tarball: packing \(root) with the agent and role files (tar, zstd \(Self.zstdLevel))")
        let started = Date()
        let payload = Set(ctx.payload.entries.map(\.path))
        let w = try ArchiveWriter(path: tarball, format: .pax, filter: .zstd(level: Self.zstdLevel))
        try w.addTree(root, xattrs: true, ownership: try ctx.rootfs.ownershipRecord()) { !Self.excluded($0) && !payload.contains($0) }
        try ctx.payload.write(into: w, over: root)
        try w.finish()
        ctx.progress(String(format: "tarball: packed in %.1f s", Date().timeIntervalSince(started)))

        // Not the user's name: the same inputs give the same file for anyone (NXC_AUTHOR sets it).
        let author = ProcessInfo.processInfo.environment["NXC_AUTHOR"] ?? "nxc"
        let env = Self.environment(name: "nxc-\(name)", composition: name, flavour: ctx.flavour.name, tarball: "./" + file,
                                   kernel: "/boot/" + kernel, initrd: "/boot/" + initrd,
                                   kernelParams: ctx.flavour.kernelParams, author: author, settings: ctx.flavour.settings(as: TarballSettings.self))
        let envPath = ctx.outputDirectory + "/\(name).env.yaml"
        try Data(env.utf8).write(to: URL(fileURLWithPath: envPath))
        let artefacts = [try Artefact(path: tarball), try Artefact(path: envPath)]
        let sums = artefacts.map { "\($0.sha256)  \($0.name)\n" }.joined()
        let sumsPath = ctx.outputDirectory + "/SHA256SUMS"
        try Data(sums.utf8).write(to: URL(fileURLWithPath: sumsPath))
        return artefacts + [try Artefact(path: sumsPath)]
    }
}

/// The Kadeploy environment description as `nxc start` hands it to Kadeploy.
public enum KadeployEnvironment {
    /// The environment with its image path made absolute (`./x.tar.zst` → `DIR/x.tar.zst`), for Kadeploy
    /// run from anywhere.
    public static func absolutised(_ text: String, directory: String) -> String {
        text.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            line.hasPrefix("  file: \"./") ? "  file: \"" + directory + "/" + line.dropFirst("  file: \"./".count) : String(line)
        }.joined(separator: "\n")
    }
}
