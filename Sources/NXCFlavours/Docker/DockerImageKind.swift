import Foundation
import NXCArchive
import NXCBuild
import NXCStore

/// A container image as a docker-archive (`docker save` format, which `docker load` reads):
/// `manifest.json`, the image config named by its SHA-256, one folder per layer. Two layers: the
/// system (packages; cached in the store) and nxc's payload (agent, units, role files), so editing a
/// file only rewrites the small layer and the archive around the cached one. Uncompressed layers:
/// `docker load` unpacks them without a decompression pass.
public struct DockerImageKind: ArtefactKind {
    public var name: String { "docker-image" }
    public init() {}
    static let recipeVersion = "1"
    /// Fixed creation time: identical inputs give an identical image ID.
    static let created = "1970-01-01T00:00:00Z"

    /// Paths (absolute, inside the image) that a container image does not carry: what the engine
    /// mounts at run time, a kernel's boot files, documentation, apt's stale lists.
    static func excluded(_ path: String) -> Bool {
        for dir in ["/dev", "/proc", "/sys", "/run", "/tmp"] where path.hasPrefix(dir + "/") { return true }
        if path.hasPrefix("/var/lib/apt/lists/") { return path != "/var/lib/apt/lists/partial" }
        for prefix in ["/boot/initrd.img", "/boot/vmlinuz", "/boot/System.map", "/usr/share/doc/", "/usr/share/man/",
                       "/usr/share/info/"] where path.hasPrefix(prefix) {
            return true
        }
        return false
    }

    /// The image's name in the engine: one per composition.
    static func reference(composition: String, flavour: String) -> String { "nxc-\(composition):\(flavour)" }

    /// The system layer (a tar of the root file system) and its diff ID, cached in the store.
    func systemLayer(_ ctx: ArtefactContext) async throws -> (path: String, diffID: String) {
        var h = InputHash("docker-layer-system")
        h.add("recipe", Self.recipeVersion)
        h.add("rootfs", ctx.rootfs.hash)
        let hash = h.finalize()
        if let p = ctx.store.lookup(name: "docker-layer", hash: hash) {
            ctx.progress("image system layer: reused")
            return (p + "/layer.tar", try String(contentsOfFile: p + "/diffid", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines))
        }
        ctx.progress("image system layer: packing \(ctx.rootfs.root) (tar)")
        let started = Date()
        let root = ctx.rootfs.root
        let ownership = try ctx.rootfs.ownershipRecord()
        let entry = try await ctx.store.realise(name: "docker-layer", hash: hash) { tmp in
            let w = try ArchiveWriter(path: tmp + "/layer.tar", format: .pax, filter: .none)
            try w.addTree(root, ownership: ownership) { !Self.excluded($0) }
            try w.finish()
            try Data((try sha256(file: tmp + "/layer.tar") + "\n").utf8).write(to: URL(fileURLWithPath: tmp + "/diffid"))
        }
        ctx.progress(String(format: "image system layer: packed in %.1f s", Date().timeIntervalSince(started)))
        return (entry.path + "/layer.tar",
                try String(contentsOfFile: entry.path + "/diffid", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// The payload layer: agent, units, composition data and role files, as a tar.
    static func writePayloadLayer(_ payload: ImagePayload, root: String, to path: String) throws {
        let w = try ArchiveWriter(path: path, format: .pax, filter: .none)
        try payload.write(into: w, over: root)
        try w.finish()
    }

    /// The image config (OCI/docker image JSON), canonical: sorted keys, no spaces.
    static func config(composition: String, diffIDs: [String], stopSignal: String) -> [UInt8] {
        struct Config: Encodable {
            struct Run: Encodable {
                var Env: [String]
                var Cmd: [String]
                var StopSignal: String
                var Labels: [String: String]
            }
            struct RootFS: Encodable {
                var type = "layers"
                var diff_ids: [String]
            }
            struct History: Encodable {
                var created: String
                var created_by: String
            }
            var architecture = "amd64"
            var os = "linux"
            var created: String
            var config: Run
            var rootfs: RootFS
            var history: [History]
        }
        let c = Config(
            created: created,
            config: .init(Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "container=docker"],
                          Cmd: ["/usr/lib/systemd/systemd"], StopSignal: stopSignal,
                          Labels: ["org.nxc.composition": composition]),
            rootfs: .init(diff_ids: diffIDs.map { "sha256:" + $0 }),
            history: [.init(created: created, created_by: "nxc: packages (mmdebstrap + apt)"),
                      .init(created: created, created_by: "nxc: agent, units and role files")])
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array((try? enc.encode(c)) ?? Data())
    }

    public func emit(_ ctx: ArtefactContext) async throws -> [Artefact] {
        let system = try await systemLayer(ctx)
        let out = ctx.outputDirectory
        let payloadPath = out + "/.payload.tar"
        try Self.writePayloadLayer(ctx.payload, root: ctx.rootfs.root, to: payloadPath)
        defer { try? FileManager.default.removeItem(atPath: payloadPath) }
        let payloadID = try sha256(file: payloadPath)
        let config = Self.config(composition: ctx.composition.name, diffIDs: [system.diffID, payloadID],
                                 stopSignal: "SIGRTMIN+3")
        let imageID = sha256(bytes: config)
        let reference = Self.reference(composition: ctx.composition.name, flavour: ctx.flavour.name)
        struct Manifest: Encodable { var Config: String; var RepoTags: [String]; var Layers: [String] }
        let layers = [system.diffID + "/layer.tar", payloadID + "/layer.tar"]
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let manifest = try enc.encode([Manifest(Config: imageID + ".json", RepoTags: [reference], Layers: layers)])

        // The archive: entries in a fixed order, fixed times and owners.
        let image = out + "/image.tar"
        let w = try ArchiveWriter(path: image, format: .pax, filter: .none)
        try w.addFile(imageID + ".json", bytes: config, mode: 0o644)
        try w.addDirectory(system.diffID, mode: 0o755)
        try w.addFile(layers[0], contentsOf: system.path, mode: 0o644)
        try w.addDirectory(payloadID, mode: 0o755)
        try w.addFile(layers[1], contentsOf: payloadPath, mode: 0o644)
        try w.addFile("manifest.json", bytes: Array(manifest), mode: 0o644)
        try w.finish()
        // The image ID `nxc start` compares with the engine's before loading.
        try Data("sha256:\(imageID) \(reference)\n".utf8).write(to: URL(fileURLWithPath: out + "/image.id"))
        ctx.progress("image \(reference): sha256:\(imageID.prefix(12)) (layers: system \(system.diffID.prefix(12)), payload \(payloadID.prefix(12)))")
        return [try Artefact(path: image), try Artefact(path: out + "/image.id")]
    }
}
