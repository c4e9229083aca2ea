import Foundation
import NXCComposition

/// Where a project keeps what nxc writes: `build/`, `deploy/`, `.nxc/`.
public struct Project: Sendable {
    public var directory: String

    public init(directory: String = FileManager.default.currentDirectoryPath) {
        self.directory = directory
    }

    /// The composition file for a path that names a file or a folder (default: ./composition.yaml).
    public func compositionFile(_ path: String?) -> String {
        let p = path ?? "."
        let full = p.hasPrefix("/") ? p : directory + "/" + p
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: full, isDirectory: &isDir), isDir.boolValue {
            return URL(fileURLWithPath: full + "/composition.yaml").standardizedFileURL.path
        }
        return URL(fileURLWithPath: full).standardizedFileURL.path
    }

    public func buildDirectory(composition: String, flavour: String) -> String {
        "\(directory)/build/\(composition)/\(flavour)"
    }

    public func deploymentFile(composition: String, flavour: String) -> String {
        "\(directory)/deploy/\(composition).\(flavour).json"
    }

    public func runDirectory(composition: String, flavour: String) -> String {
        "\(directory)/.nxc/run/\(composition).\(flavour)"
    }

    public var stateDirectory: String { "\(directory)/.nxc" }

    /// The deployment `exec`/`status`/`stop` act on: `.nxc/current` names it ("<composition>.<flavour>").
    public func currentDeployment() -> (composition: String, flavour: String)? {
        guard let text = try? String(contentsOfFile: stateDirectory + "/current", encoding: .utf8) else { return nil }
        let t = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard let dot = t.lastIndex(of: ".") else { return nil }
        return (String(t[..<dot]), String(t[t.index(after: dot)...]))
    }

    public func setCurrent(composition: String, flavour: String) throws {
        try FileManager.default.createDirectory(atPath: stateDirectory, withIntermediateDirectories: true)
        try Data("\(composition).\(flavour)\n".utf8).write(to: URL(fileURLWithPath: stateDirectory + "/current"))
    }
}

/// Writes a file by renaming a complete temporary file over it.
public func writeAtomically(_ data: Data, to path: String, mode: Int = 0o644) throws {
    let dir = (path as NSString).deletingLastPathComponent
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    let tmp = "\(dir)/.\((path as NSString).lastPathComponent).tmp-\(getpid())"
    try data.write(to: URL(fileURLWithPath: tmp))
    chmod(tmp, mode_t(mode))
    guard rename(tmp, path) == 0 else {
        try? FileManager.default.removeItem(atPath: tmp)
        throw DeployError.invalid("cannot write \(path): \(String(cString: strerror(errno)))")
    }
}
