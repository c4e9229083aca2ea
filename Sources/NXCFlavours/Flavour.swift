import Foundation
import Yams

/// The kinds of artefact a flavour can ask for; each is implemented in its own folder.
public enum ArtefactKindName: String, Sendable, Codable, CaseIterable {
    case ramdisk
    case dockerImage = "docker-image"
    case tarball
}

/// How a flavour's nodes are started; each method is implemented in NXCDeploy, one folder each.
public enum StartMethodName: String, Sendable, Codable, CaseIterable {
    case qemu
    case kexec
    case docker
    case kadeploy
}

/// A flavour: data naming an artefact kind, a start method and what they need.
public struct Flavour: Sendable, Codable, Hashable {
    public var name: String
    public var description: String
    public var artefact: ArtefactKindName
    public var start: StartMethodName
    /// Packages the flavour adds to every image (kernel, systemd, sshd …).
    public var packages: [String]
    public var kernelParams: [String]
    /// Kernel modules kept in a ramdisk (names, or paths under kernel/ ending in '/' for whole folders), with their dependencies.
    public var modules: [String]
    /// Archive components the flavour's packages need (e.g. non-free-firmware), added to the composition's.
    public var components: [String]
    /// Firmware kept in a ramdisk: folders or files under /usr/lib/firmware; empty keeps all.
    public var firmware: [String]
    /// Units masked in the image: they only slow a boot down on this platform.
    public var mask: [String]
    /// Whether a ramdisk keeps the kernel under /boot, so that a node can kexec itself again.
    public var keepKernel: Bool
    /// Files the flavour adds to every image (path → content), e.g. network configuration.
    public var files: [String: String]
    /// Symbolic links the flavour adds (path → target), e.g. units it enables.
    public var links: [String: String]
    /// Kadeploy environment settings (g5k-image).
    public var kadeploy: KadeploySettings?

    /// What a Kadeploy environment description says besides the image (Grid'5000's standard
    /// postinstall by default).
    public struct KadeploySettings: Sendable, Codable, Hashable {
        public var visibility: String?
        public var postinstall: Postinstall?
        public struct Postinstall: Sendable, Codable, Hashable {
            public var archive: String
            public var compression: String
            public var script: String
        }
    }
    /// Default memory of a VM in MiB.
    public var memory: Int
    /// Seconds `start` waits for every node.
    public var bootTimeout: Int
    /// Where the file was read from.
    public var file: String = ""

    enum CodingKeys: String, CodingKey {
        case name, description, artefact, start, packages, modules, memory, components, firmware, mask
        case kernelParams = "kernel_params"
        case bootTimeout = "boot_timeout"
        case keepKernel = "keep_kernel"
        case files, links, kadeploy
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        description = try c.decodeIfPresent(String.self, forKey: .description) ?? ""
        artefact = try c.decode(ArtefactKindName.self, forKey: .artefact)
        start = try c.decode(StartMethodName.self, forKey: .start)
        packages = try c.decodeIfPresent([String].self, forKey: .packages) ?? []
        kernelParams = try c.decodeIfPresent([String].self, forKey: .kernelParams) ?? []
        modules = try c.decodeIfPresent([String].self, forKey: .modules) ?? []
        components = try c.decodeIfPresent([String].self, forKey: .components) ?? []
        firmware = try c.decodeIfPresent([String].self, forKey: .firmware) ?? []
        mask = try c.decodeIfPresent([String].self, forKey: .mask) ?? []
        memory = try c.decodeIfPresent(Int.self, forKey: .memory) ?? 1024
        keepKernel = try c.decodeIfPresent(Bool.self, forKey: .keepKernel) ?? false
        files = try c.decodeIfPresent([String: String].self, forKey: .files) ?? [:]
        links = try c.decodeIfPresent([String: String].self, forKey: .links) ?? [:]
        kadeploy = try c.decodeIfPresent(KadeploySettings.self, forKey: .kadeploy)
        bootTimeout = try c.decodeIfPresent(Int.self, forKey: .bootTimeout) ?? 300
    }
}

/// A flavour file that cannot be used.
public struct FlavourError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

extension Flavour {
    /// Folders searched for flavour files, first match wins: the project's `flavours/`, `$NXC_DATA/flavours`,
    /// and the data installed beside the nxc executable.
    public static func searchPath(project: String = FileManager.default.currentDirectoryPath) -> [String] {
        var dirs = [project + "/flavours"]
        if let d = ProcessInfo.processInfo.environment["NXC_DATA"], !d.isEmpty { dirs.append(d + "/flavours") }
        dirs += DataFiles.installedDirectories(named: "flavours")
        var seen = Set<String>()
        return dirs.filter { seen.insert(URL(fileURLWithPath: $0).standardizedFileURL.path).inserted }
    }

    public static func load(path: String) throws -> Flavour {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw FlavourError(message: "\(path): cannot read the flavour file")
        }
        do {
            var f = try YAMLDecoder().decode(Flavour.self, from: text)
            f.file = path
            return f
        } catch let e as DecodingError {
            throw FlavourError(message: "\(path): error: \(Self.explain(e))")
        } catch {
            throw FlavourError(message: "\(path): error: \(error)")
        }
    }

    static func explain(_ e: DecodingError) -> String {
        func key(_ path: [CodingKey]) -> String { path.map(\.stringValue).joined(separator: ".") }
        switch e {
        case .keyNotFound(let k, let ctx): return "missing key '\(key(ctx.codingPath + [k]))'"
        case .typeMismatch(_, let ctx), .valueNotFound(_, let ctx): return "\(key(ctx.codingPath)): \(ctx.debugDescription)"
        case .dataCorrupted(let ctx):
            let k = key(ctx.codingPath)
            if let last = ctx.codingPath.last?.stringValue, last == "artefact" {
                return "\(k): expected one of \(ArtefactKindName.allCases.map(\.rawValue).joined(separator: ", "))"
            }
            if let last = ctx.codingPath.last?.stringValue, last == "start" {
                return "\(k): expected one of \(StartMethodName.allCases.map(\.rawValue).joined(separator: ", "))"
            }
            return "\(k.isEmpty ? "" : k + ": ")\(ctx.debugDescription)"
        @unknown default: return "\(e)"
        }
    }

    /// Finds a flavour by name on the search path.
    public static func named(_ name: String, project: String = FileManager.default.currentDirectoryPath) throws -> Flavour {
        for dir in searchPath(project: project) {
            let p = "\(dir)/\(name).yaml"
            if FileManager.default.fileExists(atPath: p) { return try load(path: p) }
        }
        let known = all(project: project).map(\.name)
        throw FlavourError(message: "error: unknown flavour '\(name)'; known flavours: \(known.joined(separator: ", "))")
    }

    /// Every flavour on the search path (the first file of each name).
    public static func all(project: String = FileManager.default.currentDirectoryPath) -> [Flavour] {
        var out: [String: Flavour] = [:]
        for dir in searchPath(project: project) {
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { continue }
            for n in names.sorted() where n.hasSuffix(".yaml") {
                if let f = try? load(path: "\(dir)/\(n)"), out[f.name] == nil { out[f.name] = f }
            }
        }
        return out.values.sorted { $0.name < $1.name }
    }
}

/// Data folders (flavours, templates) shipped with nxc.
public enum DataFiles {
    /// `<prefix>/share/nxc/NAME` for an installed nxc, and the source tree for one run from `.build`.
    public static func installedDirectories(named name: String) -> [String] {
        let bin = executable().deletingLastPathComponent()
        var dirs = [bin.deletingLastPathComponent().appendingPathComponent("share/nxc/\(name)").path]
        // .build/<triple>/<config>/nxc or .build/<config>/nxc → the package root.
        var up = bin
        for _ in 0..<4 {
            up = up.deletingLastPathComponent()
            if FileManager.default.fileExists(atPath: up.appendingPathComponent("Package.swift").path) {
                dirs.append(up.appendingPathComponent(name).path)
                break
            }
        }
        return dirs
    }

    static func executable() -> URL {
        let path = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: path).resolvingSymlinksInPath()
    }

    /// The agent binary to put into images: `$NXC_AGENT`, else `nxc-agent` beside nxc.
    public static func agentBinary() -> String? {
        if let a = ProcessInfo.processInfo.environment["NXC_AGENT"], !a.isEmpty { return a }
        let dir = executable().deletingLastPathComponent()
        for p in [dir.appendingPathComponent("nxc-agent").path,
                  dir.deletingLastPathComponent().appendingPathComponent("lib/nxc/nxc-agent").path]
        where FileManager.default.isExecutableFile(atPath: p) { return p }
        return nil
    }
}
