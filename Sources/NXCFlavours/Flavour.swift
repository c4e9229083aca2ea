import Foundation
import NXCComposition
import NXCNames

/// The names a flavour file may give for its artefact kind and its start method: the registry's
/// (NXCDeploy's `Registry`, the one list of implementations), handed to the loader.
public struct FlavourNames: Sendable {
    public var artefactKinds: [String]
    public var startMethods: [String]
    /// What each kind reads from the flavour file (kinds not listed read nothing of their own).
    public var kindSettings: [String: any FlavourSettings.Type]
    /// What each start method reads from the flavour file (methods not listed read nothing of their own).
    public var methodSettings: [String: any FlavourSettings.Type]
    public init(artefactKinds: [String], startMethods: [String], kindSettings: [String: any FlavourSettings.Type] = [:],
                methodSettings: [String: any FlavourSettings.Type] = [:]) {
        self.artefactKinds = artefactKinds
        self.startMethods = startMethods
        self.kindSettings = kindSettings
        self.methodSettings = methodSettings
    }
}

/// A flavour: data naming an artefact kind, a start method and what they need. Only the loader
/// (`Flavour+Parse.swift`) makes one from a file, and it checks every field against `FlavourRules`.
public struct Flavour: Sendable {
    /// Equal to the file's base name; becomes `build/<composition>/<name>/` and part of file names.
    public var name: String
    public var description: String
    /// The artefact kind's name, one the registry lists (the loader checks it).
    public var artefact: String
    /// The start method's name, one the registry lists (the loader checks it).
    public var start: String
    /// Packages the flavour adds to every image (kernel, systemd, sshd …).
    public var packages: [String]
    public var kernelParams: [String]
    /// Archive components the flavour's packages need (e.g. non-free-firmware), added to the composition's.
    public var components: [String]
    /// Units masked in the image (normalised: `foo` → `foo.service`): they only slow a boot down on this platform.
    public var mask: [String]
    /// Files the flavour adds to every image (path → content), e.g. network configuration.
    public var files: [String: String]
    /// Symbolic links the flavour adds (path → target), e.g. units it enables.
    public var links: [String: String]
    /// What the artefact kind read from its own keys (`settings(as:)` gives it as the kind's type).
    public var kindSettings: any FlavourSettings = NoSettings()
    /// What the start method read from its own keys (`settings(as:)` gives it as the method's type).
    public var methodSettings: any FlavourSettings = NoSettings()
    /// Seconds `start` waits for every node.
    public var bootTimeout: Int
    /// Where the file was read from.
    public var file: String = ""
    /// `default: true`: the flavour of commands given no `-f` (see `Flavour.defaultName`).
    public var isDefault = false
}

/// A flavour file, or a flavour name, that cannot be used: where, which key, and why.
public struct FlavourError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The flavour file; empty for a name that did not lead to a file (`-f`, a lock, an archive).
    public var file: String
    public var location: SourceLocation?
    public var key: String?
    public var message: String

    public init(file: String, location: SourceLocation? = nil, key: String? = nil, _ message: String) {
        self.file = file
        self.location = location
        self.key = key
        self.message = message
    }

    /// A file over `YAMLLimits.flavour`, in the same form.
    public init(_ e: YAMLLimitError) {
        self.init(file: e.file, location: e.line > 0 ? SourceLocation(file: e.file, line: e.line, column: max(e.column, 1)) : nil,
                  e.message)
    }

    public var description: String {
        var s = location.map(\.description) ?? file
        s += s.isEmpty ? "error" : ": error"
        if let key { s += ": \(key)" }
        return s + ": " + message
    }
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

    /// Finds a flavour by name on the search path. The name comes from `-f`, a lock or an archive, so it
    /// is checked before it becomes part of a path.
    public static func named(_ name: String, project: String = FileManager.default.currentDirectoryPath, names: FlavourNames) throws -> Flavour {
        guard FlavourRules.isName(name) else {
            throw FlavourError(file: "", "'\(FlavourRules.printable(name))' is not a flavour name (\(FlavourRules.nameRule))")
        }
        for dir in searchPath(project: project) {
            let p = "\(dir)/\(name).yaml"
            var st = stat()
            // lstat: a dangling link is still "there", and loading it says why it cannot be read.
            if lstat(p, &st) == 0 { return try load(path: p, names: names) }
        }
        let known = scan(project: project, names: names).flavours.map(\.name)
        let hint = Suggestion.hint(name, among: known)
        let list = "known flavours: \(known.joined(separator: ", "))"
        throw FlavourError(file: "", "unknown flavour '\(name)'" + (hint.isEmpty ? "; \(list)" : "\(hint) (\(list))"))
    }

    /// Every flavour on the search path (the first file of each name); files that do not load are left out.
    public static func all(project: String = FileManager.default.currentDirectoryPath, names: FlavourNames) -> [Flavour] {
        scan(project: project, names: names).flavours
    }

    /// Every flavour on the search path (the first file of each name), and the errors of the files
    /// that do not load: a broken file hides the ones of the same name further down the path, as with `named`.
    public static func scan(project: String = FileManager.default.currentDirectoryPath, names: FlavourNames) -> (flavours: [Flavour], errors: [FlavourError]) {
        var seen = Set<String>()
        var flavours: [Flavour] = []
        var errors: [FlavourError] = []
        for dir in searchPath(project: project) {
            guard let files = try? FileManager.default.contentsOfDirectory(atPath: dir) else { continue }
            for n in files.sorted() where n.hasSuffix(".yaml") {
                let base = String(n.dropLast(".yaml".count))
                guard seen.insert(base).inserted else { continue }
                do { flavours.append(try load(path: "\(dir)/\(n)", names: names)) } catch let e as FlavourError { errors.append(e) } catch {
                    errors.append(FlavourError(file: "\(dir)/\(n)", "\(error)"))
                }
            }
        }
        return (flavours.sorted { $0.name < $1.name }, errors)
    }
}

extension Flavour {
    /// The flavour of commands given no `-f`: the one whose file says `default: true`, in the first
    /// folder of the search path that has one (a project's `flavours/` can choose its own). Two in
    /// one folder are refused, naming both files; none at all says how to choose.
    public static func defaultName(project: String = FileManager.default.currentDirectoryPath, names: FlavourNames) throws -> String {
        let loaded = scan(project: project, names: names).flavours.filter(\.isDefault)
        func folder(_ p: String) -> String { URL(fileURLWithPath: p).standardizedFileURL.path }
        for dir in searchPath(project: project).map(folder) {
            let here = loaded.filter { folder(($0.file as NSString).deletingLastPathComponent) == dir }
            if here.count > 1 {
                throw FlavourError(file: here[1].file, key: "default",
                                   "\(here.map(\.file).joined(separator: " and ")) both say default: true; keep it in one")
            }
            if let f = here.first { return f.name }
        }
        throw FlavourError(file: "", "no flavour file says default: true (searched \(searchPath(project: project).joined(separator: ", "))); give -f FLAVOUR (see `nxc flavours`)")
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
