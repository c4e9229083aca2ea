import Foundation
import NXCComposition
import NXCStore

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

    /// What happened to each reserved host of the last start (testbed flavours).
    public func reportFile(composition: String, flavour: String) -> String {
        "\(directory)/deploy/\(composition).\(flavour).report.json"
    }

    public func runDirectory(composition: String, flavour: String) -> String {
        "\(directory)/.nxc/run/\(composition).\(flavour)"
    }

    public var stateDirectory: String { "\(directory)/.nxc" }

    /// The flavours `composition` has a deployment document for (`deploy/<c>.<f>.json`), sorted.
    public func deployedFlavours(composition: String) -> [String] {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory + "/deploy")) ?? []
        return files.compactMap { f -> String? in
            guard f.hasPrefix(composition + "."), f.hasSuffix(".json") else { return nil }
            let middle = f.dropFirst(composition.count + 1).dropLast(".json".count)
            // Flavour names have no dot: `<c>.<f>.report.json` is not a deployment.
            return middle.isEmpty || middle.contains(".") ? nil : String(middle)
        }.sorted()
    }

    /// The deployment `exec`/`status`/`stop` act on: `.nxc/current` names it ("<composition>.<flavour>").
    public func currentDeployment() -> (composition: String, flavour: String)? {
        guard let text = try? String(contentsOfFile: stateDirectory + "/current", encoding: .utf8) else { return nil }
        let t = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard let dot = t.lastIndex(of: ".") else { return nil }
        return (String(t[..<dot]), String(t[t.index(after: dot)...]))
    }

    public func setCurrent(composition: String, flavour: String) throws {
        try writeAtomically(Data("\(composition).\(flavour)\n".utf8), to: stateDirectory + "/current")
    }
}

/// Writes a file by renaming a complete temporary file over it: readers see the old file or the
/// new one. The bytes reach the disk before the rename and the rename before this returns, so a
/// power loss cannot leave an empty file under the name either. Temporary files of this name that
/// a killed nxc left are removed first.
public func writeAtomically(_ data: Data, to path: String, mode: Int = 0o644) throws {
    let dir = (path as NSString).deletingLastPathComponent
    let name = (path as NSString).lastPathComponent
    func failure(_ why: String) -> DeployError { .file("write", path: path, reason: why) }
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    Leftovers.collect(in: dir, name: name)
    let tmp = "\(dir)/.\(name).tmp-\(getpid())"
    let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode_t(0o600))
    guard fd >= 0 else { throw failure(String(cString: strerror(errno))) }
    var ok = false
    defer { if !ok { unlink(tmp) } }
    do {
        defer { close(fd) }
        try data.withUnsafeBytes { (buf: UnsafeRawBufferPointer) in
            guard let base = buf.baseAddress else { return }
            var off = 0
            while off < buf.count {
                let n = write(fd, base + off, buf.count - off)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { throw failure(String(cString: strerror(errno))) }
                off += n
            }
        }
        // fchmod, not the open mode: the umask must not change what the caller asked for.
        guard fchmod(fd, mode_t(mode)) == 0, fsync(fd) == 0 else { throw failure(String(cString: strerror(errno))) }
    }
    guard rename(tmp, path) == 0 else { throw failure(String(cString: strerror(errno))) }
    ok = true
    try Durable.sync(dir)
}

/// `nxc init`: makes a project from a template folder so that it appears whole or not at all.
public enum ProjectTemplate {
    /// Copies the template folder `template` to `target` and returns the names it created there.
    /// A new folder is copied beside and renamed into place. Into an existing folder the template
    /// is first copied whole to a hidden folder inside it, then its entries are renamed in, the
    /// composition last, and all moved back if one cannot be; an entry already there is refused
    /// before anything is copied. A process killed mid-copy leaves only the hidden folder, which the
    /// next `nxc init` there removes.
    @discardableResult
    public static func instantiate(template: String, into target: String) throws -> [String] {
        let fm = FileManager.default
        let target = URL(fileURLWithPath: target, relativeTo: URL(fileURLWithPath: fm.currentDirectoryPath)).standardizedFileURL.path
        let names: [String]
        do { names = try fm.contentsOfDirectory(atPath: template).sorted() }
        catch { throw DeployError.file("read the template", path: template, reason: error.localizedDescription) }
        guard names.contains("composition.yaml") else {
            throw DeployError.badInput(template, problem: "has no composition.yaml; not a template")
        }
        var st = stat()
        if lstat(target, &st) != 0 {
            guard errno == ENOENT else { throw DeployError.systemCall("lstat", errno: errno, context: target) }
            let parent = (target as NSString).deletingLastPathComponent
            let base = (target as NSString).lastPathComponent
            try fm.createDirectory(atPath: parent, withIntermediateDirectories: true)
            Leftovers.collect(in: parent, name: base)
            let tmp = "\(parent)/.\(base).tmp-\(getpid())"
            try copyTree(template, to: tmp)
            do {
                try Durable.syncFilesystem(of: tmp)
                guard try Durable.renameNoReplace(tmp, target) else {
                    throw DeployError.badInput(target, problem: "appeared while the template was copied; not overwriting it")
                }
                try Durable.sync(parent)
            } catch {
                try? fm.removeItem(atPath: tmp)
                throw error
            }
            return names
        }
        guard (st.st_mode & S_IFMT) == S_IFDIR else { throw DeployError.badInput(target, problem: "exists and is not a folder") }
        let clashes = names.filter { var s = stat(); return lstat(target + "/" + $0, &s) == 0 }
        guard clashes.isEmpty else {
            throw DeployError.badInput(clashes.map { target + "/" + $0 }.joined(separator: ", "),
                                       problem: "already exist\(clashes.count == 1 ? "s" : ""); not overwriting; nothing was copied")
        }
        Leftovers.collect(in: target, name: "nxc-init")
        let tmp = "\(target)/.nxc-init.tmp-\(getpid())"
        try copyTree(template, to: tmp)
        var moved: [String] = []
        do {
            try Durable.syncFilesystem(of: tmp)
            // The composition last: until it is there, the folder is not a project.
            for n in names.filter({ $0 != "composition.yaml" }) + ["composition.yaml"] {
                guard try Durable.renameNoReplace(tmp + "/" + n, target + "/" + n) else {
                    throw DeployError.badInput("\(target)/\(n)", problem: "appeared while the template was copied; not overwriting it; nothing was copied")
                }
                moved.append(n)
            }
            try Durable.sync(target)
        } catch {
            for n in moved.reversed() { rename(target + "/" + n, tmp + "/" + n) }
            try? fm.removeItem(atPath: tmp)
            throw error
        }
        rmdir(tmp)
        return names
    }

    /// Copies regular files and folders (modes kept); anything else is refused, naming it. On
    /// failure nothing of `destination` remains.
    static func copyTree(_ source: String, to destination: String) throws {
        do {
            try copyEntry(source, to: destination)
        } catch {
            try? FileManager.default.removeItem(atPath: destination)
            throw error
        }
    }

    private static func copyEntry(_ src: String, to dst: String) throws {
        func failure(_ what: String) -> DeployError { .file("copy the template file", path: src, reason: what) }
        var st = stat()
        guard lstat(src, &st) == 0 else { throw failure(String(cString: strerror(errno))) }
        let mode = mode_t(st.st_mode & 0o777)
        switch st.st_mode & S_IFMT {
        case S_IFDIR:
            guard mkdir(dst, 0o700) == 0 else { throw DeployError.file("create", path: dst, reason: String(cString: strerror(errno))) }
            let names: [String]
            do { names = try FileManager.default.contentsOfDirectory(atPath: src).sorted() }
            catch { throw failure(error.localizedDescription) }
            for n in names { try copyEntry(src + "/" + n, to: dst + "/" + n) }
            chmod(dst, mode)
        case S_IFREG:
            let input = open(src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
            guard input >= 0 else { throw failure(String(cString: strerror(errno))) }
            defer { close(input) }
            let output = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode_t(0o600))
            guard output >= 0 else { throw DeployError.file("create", path: dst, reason: String(cString: strerror(errno))) }
            defer { close(output) }
            var buf = [UInt8](repeating: 0, count: 1 << 16)
            while true {
                let n = buf.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                guard n >= 0 else { throw failure(String(cString: strerror(errno))) }
                if n == 0 { break }
                var off = 0
                while off < n {
                    let w = buf[off..<n].withUnsafeBytes { write(output, $0.baseAddress, $0.count) }
                    if w < 0 && errno == EINTR { continue }
                    guard w > 0 else { throw DeployError.file("write", path: dst, reason: String(cString: strerror(errno))) }
                    off += w
                }
            }
            fchmod(output, mode)
        case S_IFLNK: throw failure("a symbolic link; a template holds only files and folders")
        default: throw failure("not a regular file or folder")
        }
    }
}
