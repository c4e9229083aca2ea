import Foundation
#if canImport(Glibc)
import Glibc
#endif
import NXCNames
import Yams

/// Roles and what each lists: packages, services, ports, memory, files.
extension CompositionParser {
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
            var minNode: Node?
            for (k, _, rv) in try mapping(v, key, allowed: ["count", "min", "packages", "services", "files", "memory", "ports", "collect", "state"]) {
                let rk = "\(key).\(k)"
                switch k {
                case "count":
                    let c = try int(rv, rk)
                    guard c >= 1 else { throw fail(rv, rk, "count must be a positive integer, got \(c)") }
                    guard c <= 999 else { throw fail(rv, rk, "count \(c) is too large (at most 999)") }
                    role.count = c
                case "min":
                    minNode = rv
                    let m = try int(rv, rk)
                    guard m >= 0 else { throw fail(rv, rk, "min must be 0 or more, got \(m)") }
                    guard m <= 999 else { throw fail(rv, rk, "min \(m) is too large (at most 999)") }
                    role.minimum = m
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
                case "collect":
                    role.collect = try stringList(rv, rk).map { p in
                        let parts = p.value.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
                        let why = !p.value.hasPrefix("/") ? "must be absolute (start with '/')"
                            : parts.contains("..") || parts.contains(".") ? "must not contain '.' or '..' components"
                            : p.value == "/" || parts.contains("") ? "must name a file or a folder below / (no empty components, no trailing '/')" : nil
                        if let why {
                            throw CompositionError(file: file, location: p.location, key: p.key, "path '\(DebianSource.shown(p.value))' \(why)")
                        }
                        return p
                    }
                case "state":
                    role.state = try stringList(rv, rk).map { p in
                        if let why = Self.statePathProblem(p.value) {
                            throw CompositionError(file: file, location: p.location, key: p.key, "path '\(DebianSource.shown(p.value))' \(why)")
                        }
                        return p
                    }
                    guard role.state.count <= 16 else { throw fail(rv, rk, "at most 16 folders, got \(role.state.count)") }
                default: break
                }
            }
            if let m = role.minimum, m > role.count, let n = minNode {
                throw fail(n, "\(key).min", "min \(m) is more than the role's count (\(role.count))")
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
    /// Folders of the system itself, which a node does not keep as its own state.
    static let systemFolders: Set<String> = ["bin", "boot", "dev", "etc", "lib", "lib32", "lib64", "libx32", "proc", "run", "sbin", "sys", "tmp", "usr"]

    /// Why a `state` path is refused, or nil: an absolute folder below / with plain components
    /// (letters, digits, `.`, `_`, `-`, `+`, `@`: it travels on the kernel command line and in a
    /// shell's argv), not a folder of the system itself.
    static func statePathProblem(_ path: String) -> String? {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        if !path.hasPrefix("/") { return "must be absolute (start with '/')" }
        if path == "/" || parts.contains("") { return "must name a folder below / (no empty components, no trailing '/')" }
        if parts.contains("..") || parts.contains(".") { return "must not contain '.' or '..' components" }
        if !path.unicodeScalars.allSatisfy({ c in
            (c.value >= 0x30 && c.value <= 0x39) || (c.value >= 0x41 && c.value <= 0x5a) || (c.value >= 0x61 && c.value <= 0x7a) || "/._-+@".unicodeScalars.contains(c)
        }) { return "may hold only letters, digits and . _ - + @" }
        if path.count > 200 { return "is longer than 200 characters" }
        if let first = parts.first, systemFolders.contains(String(first)) {
            return "is in /\(first), part of the system: a node keeps state in folders such as /var/lib/NAME, /var/log/NAME, /srv or /home"
        }
        return nil
    }
}
