import Foundation
#if canImport(Glibc)
import Glibc
#endif
import NXCNames
import Yams

extension Composition {
    /// Reads and validates a composition file. Every error names the file, line, column and key.
    public static func load(path: String) throws -> Composition {
        let url = URL(fileURLWithPath: path).standardizedFileURL
        guard FileManager.default.fileExists(atPath: path) else {
            throw CompositionError(file: path, "cannot read the composition file (does it exist?)")
        }
        let text: String
        do { text = try YAMLLimits.composition.read(path: path) } catch let e as YAMLLimitError {
            throw CompositionError(file: path, e.message)
        }
        let folder = url.deletingLastPathComponent()
        return try parse(text, file: path, directory: folder.path,
                         defaultName: defaultName(forFolder: folder.lastPathComponent))
    }

    /// A folder name made into a valid composition name ("My_Project" → "my-project").
    public static func defaultName(forFolder folder: String) -> String {
        let mapped = String(folder.lowercased().map { ($0.isASCII && ($0.isLetter || $0.isNumber)) ? $0 : "-" })
        let trimmed = mapped.split(separator: "-", omittingEmptySubsequences: true).joined(separator: "-")
        return trimmed.isEmpty ? "composition" : String(trimmed.prefix(63))
    }

    /// Parses composition text; `directory` resolves `source:` files, `defaultName` is used when `name:` is absent.
    public static func parse(_ text: String, file: String, directory: String, defaultName: String) throws -> Composition {
        var parser = CompositionParser(file: file, directory: directory)
        return try parser.parse(text, defaultName: defaultName)
    }
}

/// Walks the YAML node tree, keeping positions, and builds a `Composition`.
struct CompositionParser {
    let file: String
    let directory: String
    /// Bytes of every role's files so far (`FileLimits.total`).
    var fileBytes = 0

    init(file: String, directory: String) {
        self.file = file
        self.directory = directory
    }

    func loc(_ node: Node) -> SourceLocation {
        SourceLocation(file: file, line: node.mark?.line ?? 1, column: node.mark?.column ?? 1)
    }

    func fail(_ node: Node?, _ key: String?, _ message: String) -> CompositionError {
        CompositionError(file: file, location: node.map(loc), key: key, message)
    }

    func describe(_ node: Node) -> String {
        switch node {
        case .scalar(let s): return s.style == .plain ? "'\(s.string)'" : "the string '\(s.string)'"
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        @unknown default: return "a value"
        }
    }

    func mapping(_ node: Node, _ key: String, allowed: [String]) throws -> [(key: String, keyNode: Node, value: Node)] {
        guard case .mapping(let m) = node else {
            throw fail(node, key.isEmpty ? nil : key, "expected a mapping, got \(describe(node))")
        }
        var seen: [String: Node] = [:]
        var out: [(String, Node, Node)] = []
        for (k, v) in m {
            guard case .scalar(let ks) = k else { throw fail(k, key, "keys must be plain words") }
            let name = ks.string
            let path = key.isEmpty ? name : "\(key).\(name)"
            if !allowed.isEmpty && !allowed.contains(name) {
                let hint = Suggestion.hint(name, among: allowed)
                throw fail(k, path, "unknown key '\(name)'" + (hint.isEmpty ? "; expected one of: " : hint + " (expected one of: ")
                                    + allowed.joined(separator: ", ") + (hint.isEmpty ? "" : ")"))
            }
            if let first = seen[name] {
                throw fail(k, path, "duplicate key '\(name)' (first at line \(first.mark?.line ?? 0))")
            }
            seen[name] = k
            out.append((name, k, v))
        }
        return out
    }

    func string(_ node: Node, _ key: String) throws -> String {
        guard case .scalar(let s) = node else { throw fail(node, key, "expected a string, got \(describe(node))") }
        if s.style == .plain && (s.string == "~" || s.string == "null" || s.string.isEmpty) {
            throw fail(node, key, "expected a string, got nothing")
        }
        return s.string
    }

    func int(_ node: Node, _ key: String) throws -> Int {
        guard case .scalar(let s) = node, s.style == .plain, let v = Int(s.string) else {
            throw fail(node, key, "expected an integer, got \(describe(node))")
        }
        return v
    }

    func stringList(_ node: Node, _ key: String) throws -> [Located<String>] {
        guard case .sequence(let seq) = node else {
            throw fail(node, key, "expected a list of strings, got \(describe(node))")
        }
        var out: [Located<String>] = []
        for (i, item) in seq.enumerated() {
            let k = "\(key)[\(i)]"
            out.append(Located(try string(item, k), at: loc(item), key: k))
        }
        return out
    }

    mutating func parse(_ text: String, defaultName: String) throws -> Composition {
        let root: Node
        do {
            guard let n = try YAMLLimits.composition.compose(text, file: file) else {
                throw CompositionError(file: file, "the composition is empty; expected a mapping with 'roles:'")
            }
            root = n
        } catch let e as YamlError {
            throw yamlError(e)
        } catch let e as YAMLLimitError {
            throw CompositionError(file: file, location: e.line > 0 ? SourceLocation(file: file, line: e.line, column: e.column) : nil,
                                   e.message)
        }
        var name = defaultName
        var nameNode: Node?
        var distribution = Distribution()
        var packages: [Located<String>] = []
        var roles: [Role] = []
        var rolesSeen = false
        var test: String?
        for (k, keyNode, v) in try mapping(root, "", allowed: ["name", "description", "distribution", "packages", "roles", "test"]) {
            switch k {
            case "name": name = try string(v, k); nameNode = v
            case "description": _ = try string(v, k)
            case "distribution": distribution = try parseDistribution(v)
            case "packages": packages = try parsePackages(v, k)
            case "roles": roles = try parseRoles(v, keyNode); rolesSeen = true
            case "test": test = try string(v, k)
            default: break
            }
        }
        guard rolesSeen else { throw fail(root, "roles", "missing key 'roles': a composition needs at least one role") }
        if !isHostname(name) {
            throw fail(nameNode ?? root, "name", "'\(name)' is not a valid composition name (lowercase letters, digits and '-', starting with a letter or digit)")
        }
        // Host names of all roles must be distinct (`client` count 2 and a role `client1` collide).
        var hosts: [String: String] = [:]
        for role in roles {
            for h in role.hostNames() {
                if let other = hosts[h] {
                    throw CompositionError(file: file, location: role.location, key: "roles.\(role.name)",
                                           "host name '\(h)' of role '\(role.name)' collides with a host of role '\(other)'; rename a role or change its count")
                }
                hosts[h] = role.name
            }
        }
        return Composition(name: name, file: file, distribution: distribution, packages: packages, roles: roles, test: test)
    }

    func yamlError(_ e: YamlError) -> CompositionError {
        let (location, message) = describeYAMLError(e, file: file)
        return CompositionError(file: file, location: location, message)
    }

    func parseDistribution(_ node: Node) throws -> Distribution {
        var d = Distribution()
        for (k, _, v) in try mapping(node, "distribution", allowed: ["suite", "mirror", "components", "architecture"]) {
            let key = "distribution.\(k)"
            switch k {
            case "suite":
                d.suite = try source(v, key, DebianSource.validateSuite)
            case "mirror":
                d.mirror = try source(v, key, DebianSource.validateMirror)
            case "components":
                let list = try stringList(v, key)
                guard !list.isEmpty else { throw fail(v, key, "expected at least one component (e.g. [main])") }
                for c in list {
                    do { try DebianSource.validateComponent(c.value) } catch {
                        throw CompositionError(file: file, location: c.location, key: c.key, error.message)
                    }
                }
                d.components = list.map(\.value)
            case "architecture":
                d.architecture = try source(v, key, DebianSource.validateArchitecture)
                guard d.architecture == "amd64" else {
                    throw fail(v, key, "only amd64 is supported, got '\(d.architecture)'")
                }
            default: break
            }
        }
        return d
    }

    /// A string that becomes part of the package sources, checked by its `DebianSource` rule.
    func source(_ node: Node, _ key: String, _ rule: (String) throws(DebianSource.Invalid) -> Void) throws -> String {
        let value = try string(node, key)
        do { try rule(value) } catch { throw fail(node, key, error.message) }
        return value
    }

    func parsePackages(_ node: Node, _ key: String) throws -> [Located<String>] {
        let list = try stringList(node, key)
        for p in list where !isPackageName(p.value) {
            throw CompositionError(file: file, location: p.location, key: p.key,
                                   "'\(p.value)' is not a Debian package name (lowercase letters, digits, '+', '-', '.')")
        }
        return list
    }

    mutating func parseRoles(_ node: Node, _ keyNode: Node) throws -> [Role] {
        let entries = try mapping(node, "roles", allowed: [])
        if entries.isEmpty { throw fail(keyNode, "roles", "no roles: define at least one role") }
        var roles: [Role] = []
        for (name, nameNode, v) in entries {
            let key = "roles.\(name)"
            guard isHostname(name) else {
                throw fail(nameNode, key, "role name '\(name)' is not a valid host name (lowercase letters, digits and '-', at most 63 characters, not starting or ending with '-')")
            }
            var role = Role(name: name, location: loc(nameNode))
            // A role with nothing in it (`hello:` with no value) is allowed.
            if case .scalar(let s) = v, s.style == .plain, s.string.isEmpty || s.string == "~" || s.string == "null" {
                roles.append(role)
                continue
            }
            for (k, _, rv) in try mapping(v, key, allowed: ["count", "packages", "services", "files", "memory", "ports"]) {
                let rk = "\(key).\(k)"
                switch k {
                case "count":
                    let c = try int(rv, rk)
                    guard c >= 1 else { throw fail(rv, rk, "count must be a positive integer, got \(c)") }
                    guard c <= 999 else { throw fail(rv, rk, "count \(c) is too large (at most 999)") }
                    role.count = c
                case "packages": role.packages = try parsePackages(rv, rk)
                case "services":
                    // Kept as unit names (`nginx` → `nginx.service`, `php8.2-fpm` → `php8.2-fpm.service`): the
                    // build, the image's composition.json and the agent then agree on what a service is.
                    role.services = try stringList(rv, rk).map { s in
                        guard let unit = UnitName.normalize(s.value) else {
                            throw CompositionError(file: file, location: s.location, key: s.key,
                                                   "'\(DebianSource.shown(s.value))' " + (UnitName.problem(s.value) ?? "is not a systemd unit name"))
                        }
                        return Located(unit, at: s.location, key: s.key)
                    }
                case "files": role.files = try parseFiles(rv, rk)
                case "memory": role.memoryMiB = try parseMemory(rv, rk)
                case "ports": role.ports = try parsePorts(rv, rk)
                default: break
                }
            }
            if role.count > 1, let fixed = role.ports.first(where: { $0.hostPort != nil }) {
                throw CompositionError(file: file, location: fixed.location, key: "\(key).ports",
                                       "host port \(fixed.hostPort ?? 0) cannot be published by the \(role.count) nodes of role '\(name)'; give only the container port (\(fixed.containerPort)) and each node gets its own host port")
            }
            roles.append(role)
        }
        return roles
    }

    func parsePorts(_ node: Node, _ key: String) throws -> [PortSpec] {
        guard case .sequence(let seq) = node else {
            throw fail(node, key, "expected a list of ports such as [80, \"8080:80\", \"0.0.0.0:8443:443/tcp\"], got \(describe(node))")
        }
        var ports: [PortSpec] = []
        var seen = Set<String>()
        for item in seq {
            guard case .scalar(let s) = item, let p = PortSpec.parse(s.string, location: loc(item)) else {
                throw fail(item, key, "expected a port: CONTAINER, HOST:CONTAINER or ADDRESS:HOST:CONTAINER (ports 1-65535, IPv4 address), optionally /tcp or /udp; got \(describe(item))")
            }
            guard seen.insert("\(p.containerPort)/\(p.proto)").inserted else {
                throw fail(item, key, "container port \(p.containerPort)/\(p.proto) is published twice")
            }
            ports.append(p)
        }
        return ports
    }

    func parseMemory(_ node: Node, _ key: String) throws -> Int {
        guard case .scalar(let s) = node else { throw fail(node, key, "expected a size such as 1024 (MiB), 512M or 2G") }
        guard let m = parseMemorySize(s.string), m >= 128, m <= 65536 else {
            throw fail(node, key, "expected a size between 128M and 64G such as 1024 (MiB), 512M or 2G, got '\(s.string)'")
        }
        return m
    }

    mutating func parseFiles(_ node: Node, _ key: String) throws -> [FileSpec] {
        var files: [FileSpec] = []
        for (path, pathNode, v) in try mapping(node, key, allowed: []) {
            let fk = "\(key).\(path)"
            guard path.hasPrefix("/") else {
                throw fail(pathNode, fk, "file path '\(path)' must be absolute (start with '/')")
            }
            let parts = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
            if parts.contains("..") || parts.contains(".") {
                throw fail(pathNode, fk, "file path '\(path)' must not contain '.' or '..' components")
            }
            if path.hasSuffix("/") || parts.contains("") {
                throw fail(pathNode, fk, "file path '\(path)' must name a file (no empty components, no trailing '/')")
            }
            var content: [UInt8]?
            var source: String?
            var mode: UInt32 = 0o644
            for (k, _, fv) in try mapping(v, fk, allowed: ["content", "source", "mode"]) {
                let kk = "\(fk).\(k)"
                switch k {
                case "content":
                    guard content == nil else { throw fail(fv, kk, "give either 'content' or 'source', not both") }
                    guard case .scalar(let s) = fv else { throw fail(fv, kk, "expected a string, got \(describe(fv))") }
                    content = try counted(Array(s.string.utf8), fv, kk)
                case "source":
                    guard content == nil else { throw fail(fv, kk, "give either 'content' or 'source', not both") }
                    let src = try string(fv, kk)
                    content = try readSource(src, fv, kk)
                    source = src
                case "mode":
                    guard case .scalar(let s) = fv, (3...4).contains(s.string.count),
                          s.string.allSatisfy({ ("0"..."7").contains($0) }), let m = UInt32(s.string, radix: 8) else {
                        throw fail(fv, kk, "expected an octal mode such as \"0644\", got \(describe(fv))")
                    }
                    mode = m
                default: break
                }
            }
            guard let c = content else { throw fail(pathNode, fk, "a file needs 'content' or 'source'") }
            files.append(FileSpec(path: path, content: c, mode: mode, location: loc(pathNode), source: source))
        }
        return files
    }
}

extension CompositionParser {
    /// Reads a `source:` file: a regular file inside the composition's folder once every symlink is
    /// resolved (a composition from elsewhere must not copy `/etc/shadow` or `~/.ssh/id_ed25519` into
    /// an image), within the size limits.
    mutating func readSource(_ src: String, _ node: Node, _ key: String) throws -> [UInt8] {
        let shown = DebianSource.shown(src)
        guard !src.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) else {
            throw fail(node, key, "source file '\(shown)' has a control character in its name")
        }
        guard !src.hasPrefix("/") else {
            throw fail(node, key, "source file '\(shown)' must be relative to the composition's folder, not an absolute path")
        }
        var depth = 0
        for part in src.split(separator: "/") where part != "." {
            depth += part == ".." ? -1 : 1
            if depth < 0 {
                throw fail(node, key, "source file '\(shown)' leads outside the composition's folder; copy the file into the folder")
            }
        }
        guard let folder = Self.realpath(directory) else { throw fail(node, key, "cannot resolve the composition's folder '\(directory)'") }
        guard let resolved = Self.realpath(directory + "/" + src) else {
            throw fail(node, key, "cannot read source file '\(shown)' (relative to the composition's folder): \(String(cString: strerror(errno)))")
        }
        guard resolved == folder || resolved.hasPrefix(folder == "/" ? "/" : folder + "/") else {
            throw fail(node, key, "source file '\(shown)' leads outside the composition's folder (to \(DebianSource.shown(resolved))); "
                       + "copy the file into the folder")
        }
        // O_NOFOLLOW: the path was just resolved; a symlink appearing now is refused, not followed.
        let fd = open(resolved, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        guard fd >= 0 else {
            throw fail(node, key, "cannot read source file '\(shown)': \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            throw fail(node, key, "source file '\(shown)' is not a regular file")
        }
        guard st.st_size <= FileLimits.each else { throw fail(node, key, FileLimits.eachMessage(shown)) }
        let bytes: [UInt8]
        do { bytes = try BoundedRead.all(fd: fd, limit: FileLimits.each, path: src, what: "source file '\(shown)'") } catch {
            throw fail(node, key, (error as? YAMLLimitError)?.message ?? "cannot read source file '\(shown)'")
        }
        return try counted(bytes, node, key)
    }

    /// Adds a file's size to the composition's total, refusing either limit.
    mutating func counted(_ bytes: [UInt8], _ node: Node, _ key: String) throws -> [UInt8] {
        guard bytes.count <= FileLimits.each else { throw fail(node, key, FileLimits.eachMessage(nil)) }
        fileBytes += bytes.count
        guard fileBytes <= FileLimits.total else {
            throw fail(node, key, "the roles' files add up to more than \(FileLimits.total >> 20) MiB (the limit for all files of a composition)")
        }
        return bytes
    }

    static func realpath(_ path: String) -> String? {
        guard let p = Glibc.realpath(path, nil) else { return nil }
        defer { free(p) }
        return String(cString: p)
    }
}

/// The limits on the files a composition puts into its image (`files:`, inline or from `source:`).
public enum FileLimits {
    public static let each = 16 << 20
    public static let total = 64 << 20

    static func eachMessage(_ src: String?) -> String {
        (src.map { "source file '\($0)'" } ?? "the content") + " is larger than \(each >> 20) MiB (the limit for one file of a composition)"
    }
}

/// RFC 1123 host name label, lowercase.
public func isHostname(_ s: String) -> Bool {
    guard (1...63).contains(s.utf8.count), !s.hasPrefix("-"), !s.hasSuffix("-") else { return false }
    return s.utf8.allSatisfy { ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 45 }
}

/// Debian policy 5.6.7: lowercase letters, digits, '+', '-', '.', at least two characters, starting alphanumeric.
public func isPackageName(_ s: String) -> Bool {
    guard s.utf8.count >= 2, let f = s.utf8.first, (f >= 97 && f <= 122) || (f >= 48 && f <= 57) else { return false }
    return s.utf8.allSatisfy { ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 43 || $0 == 45 || $0 == 46 }
}
