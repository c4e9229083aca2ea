import Foundation
import NXCArchive
import NXCComposition

/// One entry that nxc adds to an image on top of the packages.
public enum ImageEntry: Sendable, Equatable {
    case directory(path: String, mode: UInt32)
    case file(path: String, content: [UInt8], mode: UInt32)
    case fileFromDisk(path: String, source: String, mode: UInt32)
    case symlink(path: String, target: String)

    public var path: String {
        switch self {
        case .directory(let p, _), .file(let p, _, _), .fileFromDisk(let p, _, _), .symlink(let p, _): return p
        }
    }
}

/// What every image of a composition carries besides packages: the agent, its systemd unit and
/// generator, the composition's role data, and each role's files (installed by the agent on the
/// nodes of that role only).
public struct ImagePayload: Sendable {
    public var entries: [ImageEntry]

    public static let agentPath = "/usr/sbin/nxc-agent"
    public static let rolesDir = "/usr/share/nxc/roles"

    public static let agentUnit = """
        [Unit]
        Description=nxc agent: make this machine its deployment's node
        Documentation=https://github.com/nxc/nxc
        After=systemd-udev-trigger.service local-fs.target
        Wants=systemd-udev-trigger.service
        Before=ssh.service network-online.target multi-user.target

        [Service]
        Type=oneshot
        RemainAfterExit=yes
        ExecStart=/usr/sbin/nxc-agent boot
        StandardOutput=journal+console
        TimeoutStartSec=300

        [Install]
        WantedBy=multi-user.target

        """

    /// The composition's role data as the agent reads it from /etc/nxc/composition.json.
    public static func compositionJSON(_ c: Composition) -> [UInt8] {
        struct Doc: Encodable {
            struct R: Encodable { var services: [String]; var files: [String] }
            var version = 1
            var name: String
            var roles: [String: R]
        }
        let doc = Doc(name: c.name, roles: Dictionary(uniqueKeysWithValues: c.roles.map {
            ($0.name, Doc.R(services: $0.services.map(\.value), files: $0.files.map(\.path)))
        }))
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return Array((try? enc.encode(doc)) ?? Data()) + [10]
    }

    /// `masked`: units of the flavour that only slow a boot down (timers of a long-lived system, …);
    /// a unit that a role lists as a service is never masked.
    /// `files` and `links`: what the flavour adds (path → content, path → target).
    /// `installer`: the disk installer and its unit (images that boot from the network: `--install`).
    public init(composition c: Composition, agentBinary: String, masked: [String] = [],
                files: [String: String] = [:], links: [String: String] = [:], installer: Bool = false) {
        var e: [ImageEntry] = [
            .directory(path: "/etc/nxc", mode: 0o755),
            .file(path: "/etc/nxc/composition.json", content: Self.compositionJSON(c), mode: 0o644),
            .fileFromDisk(path: Self.agentPath, source: agentBinary, mode: 0o755),
            .file(path: "/usr/lib/systemd/system/nxc-agent.service", content: Array(Self.agentUnit.utf8), mode: 0o644),
            .symlink(path: "/etc/systemd/system/multi-user.target.wants/nxc-agent.service",
                     target: "/usr/lib/systemd/system/nxc-agent.service"),
            .symlink(path: "/usr/lib/systemd/system-generators/nxc-generator", target: Self.agentPath),
            .directory(path: "/usr/share/nxc", mode: 0o755),
            .directory(path: Self.rolesDir, mode: 0o755),
        ]
        if installer {
            e += [.directory(path: "/usr/lib/nxc", mode: 0o755),
                  .file(path: DiskInstaller.path, content: Array(DiskInstaller.script.utf8), mode: 0o755),
                  .file(path: DiskInstaller.unitPath, content: Array(DiskInstaller.unit.utf8), mode: 0o644),
                  .symlink(path: "/etc/systemd/system/multi-user.target.wants/nxc-install.service", target: DiskInstaller.unitPath)]
        }
        let services = Set(c.roles.flatMap { $0.services.map { $0.value.contains(".") ? $0.value : $0.value + ".service" } })
        for unit in masked.sorted() where !services.contains(unit) {
            e.append(.symlink(path: "/etc/systemd/system/\(unit)", target: "/dev/null"))
        }
        for role in c.roles where !role.files.isEmpty {
            let base = "\(Self.rolesDir)/\(role.name)"
            var dirs = Set<String>()
            for f in role.files.sorted(by: { $0.path < $1.path }) {
                var parent = ""
                for comp in (base + f.path).split(separator: "/").dropLast() {
                    parent += "/" + comp
                    if parent.count > Self.rolesDir.count, dirs.insert(parent).inserted {
                        e.append(.directory(path: parent, mode: 0o755))
                    }
                }
                e.append(.file(path: base + f.path, content: f.content, mode: f.mode))
            }
        }
        for (path, content) in files.sorted(by: { $0.key < $1.key }) {
            e.append(.file(path: path, content: Array(content.utf8), mode: 0o644))
        }
        for (path, target) in links.sorted(by: { $0.key < $1.key }) {
            e.append(.symlink(path: path, target: target))
        }
        entries = e
    }

    /// The entries split in two: the agent's binary alone (the same for every composition, until
    /// nxc-agent changes), and the rest (the composition's own: units, role data, role files).
    public func splitAgent() -> (agent: ImagePayload, rest: ImagePayload) {
        var agent = self, rest = self
        agent.entries = entries.filter { $0.path == Self.agentPath }
        rest.entries = entries.filter { $0.path != Self.agentPath }
        return (agent, rest)
    }

    /// The same entries under the folder `prefix` (an initrd that copies them onto the system at boot).
    public func under(_ prefix: String) -> ImagePayload {
        var moved = self
        moved.entries = entries.map { e in
            switch e {
            case .directory(let p, let mode): return .directory(path: prefix + p, mode: mode)
            case .file(let p, let content, let mode): return .file(path: prefix + p, content: content, mode: mode)
            case .fileFromDisk(let p, let source, let mode): return .fileFromDisk(path: prefix + p, source: source, mode: mode)
            case .symlink(let p, let target): return .symlink(path: prefix + p, target: target)
            }
        }
        return moved
    }

    /// Parent directories of `entries` that are not themselves entries, for formats that need them.
    public func missingParents(existsInBase: (String) -> Bool) -> [String] {
        let have = Set(entries.map(\.path))
        var out: [String] = []
        var seen = Set<String>()
        for entry in entries {
            var parent = ""
            for comp in entry.path.split(separator: "/").dropLast() {
                parent += "/" + comp
                if !have.contains(parent), !existsInBase(parent), seen.insert(parent).inserted { out.append(parent) }
            }
        }
        return out
    }

    /// Writes the entries into `w`, as a layer over the system tree at `root`: parents the system
    /// lacks first; directories the system already has are left out (an upper layer's entry would
    /// replace their mode and owner).
    public func write(into w: ArchiveWriter, over root: String) throws {
        let fm = FileManager.default
        for dir in missingParents(existsInBase: { fm.fileExists(atPath: root + $0) }) {
            try w.addDirectory(dir)
        }
        for e in entries {
            switch e {
            case .directory(let p, let mode):
                if !fm.fileExists(atPath: root + p) { try w.addDirectory(p, mode: mode) }
            case .file(let p, let content, let mode): try w.addFile(p, bytes: content, mode: mode)
            case .fileFromDisk(let p, let src, let mode): try w.addFile(p, contentsOf: src, mode: mode)
            case .symlink(let p, let target): try w.addSymlink(p, target: target)
            }
        }
    }
}
