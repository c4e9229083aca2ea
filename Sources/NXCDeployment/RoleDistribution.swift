import Foundation
import NXCComposition
import NXCNames
import Yams

/// Which nodes a deployment has: counts from the composition, overridden by `-r role=N` or
/// `-r role=host1,host2` (testbed flavours), or by a role-distribution file.
public enum RoleDistribution {
    /// How many nodes a role gets, or on which hosts.
    public enum Spec: Sendable, Equatable {
        case count(Int)
        case hosts([String])
    }

    public static func parseOverrides(_ composition: Composition, _ overrides: [String], allowHosts: Bool) throws -> [String: Spec] {
        var specs: [String: Spec] = [:]
        for o in overrides {
            let parts = o.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw DeployError.badRoleOverride(o, "expected ROLE=N or ROLE=host1,host2")
            }
            guard composition.role(named: parts[0]) != nil else {
                let roles = composition.roles.map(\.name)
                throw DeployError.badRoleOverride(o, "no role '\(parts[0])' in the composition" + Suggestion.hint(parts[0], among: roles)
                                                  + " (roles: \(roles.joined(separator: ", ")))")
            }
            // `min=K` items say how few nodes the role may run with; the rest is a count or hosts.
            let (value, _) = try splitMinimum(o, parts[1])
            if value.isEmpty { continue }
            if let n = Int(value) {
                guard n >= 0, n <= 999 else { throw DeployError.badRoleOverride(o, "'\(value)' is not a node count (0 to 999)") }
                specs[parts[0]] = .count(n)
            } else if !allowHosts {
                throw DeployError.badRoleOverride(o, "'\(value)' is not a node count (0 to 999); hosts by name are for testbed flavours")
            } else {
                let hosts = value.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
                guard !hosts.isEmpty, hosts.allSatisfy({ !$0.isEmpty }) else {
                    throw DeployError.badRoleOverride(o, "expected a comma-separated list of hosts")
                }
                specs[parts[0]] = .hosts(hosts)
            }
        }
        return specs
    }

    /// `2,min=1` → ("2", 1); `host1,host2` → ("host1,host2", nil); `min=1` → ("", 1).
    static func splitMinimum(_ override: String, _ value: String) throws -> (String, Int?) {
        var minimum: Int?
        var rest: [Substring] = []
        for item in value.split(separator: ",", omittingEmptySubsequences: false) {
            guard item.hasPrefix("min=") else { rest.append(item); continue }
            guard let m = Int(item.dropFirst(4)), (0...999).contains(m) else {
                throw DeployError.badRoleOverride(override, "'\(item)': min takes a node count (0 to 999)")
            }
            guard minimum == nil else { throw DeployError.badRoleOverride(override, "min is given twice") }
            minimum = m
        }
        return (rest.joined(separator: ","), minimum)
    }

    /// The fewest nodes each role may run with on reserved hosts: `-r ROLE=…,min=K`, else the
    /// composition's `min`, else all of its nodes. Never more than the role's nodes.
    public static func minimums(_ composition: Composition, overrides: [String], nodes: [(node: String, role: String)]) throws -> [String: Int] {
        var given: [String: Int] = [:]
        for o in overrides {
            let parts = o.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, let m = try splitMinimum(o, parts[1]).1 else { continue }
            given[parts[0]] = m
        }
        var out: [String: Int] = [:]
        for role in composition.roles {
            let n = nodes.filter { $0.role == role.name }.count
            guard n > 0 else { continue }
            let m = given[role.name] ?? role.minimum ?? n
            if m > n, let o = overrides.first(where: { $0.hasPrefix(role.name + "=") && $0.contains("min=") }) {
                throw DeployError.badRoleOverride(o, "min \(m) is more than the role's \(n) node(s)")
            }
            out[role.name] = min(m, n)
        }
        return out
    }

    /// One role of a role-distribution file, and where it was written.
    public struct FileEntry: Sendable, Equatable {
        public var role: String
        public var spec: Spec
        public var line: Int
        public var column: Int

        /// The entry as a `-r` override.
        public var override: String {
            switch spec {
            case .count(let n): return "\(role)=\(n)"
            case .hosts(let h): return "\(role)=" + h.joined(separator: ",")
            }
        }
    }

    /// A role-distribution file that cannot be used: `FILE:LINE:COLUMN: error: KEY: message`.
    public struct FileError: Error, Sendable, Equatable, CustomStringConvertible {
        public var file: String
        public var line: Int
        public var column: Int
        public var key: String?
        public var message: String

        public var description: String {
            (line > 0 ? "\(file):\(line):\(column)" : file) + ": error: " + (key.map { "\($0): " } ?? "") + message
        }
    }

    /// Reads a role-distribution file (`server: 1`, `client: [host2, host3]`) as `-r` overrides.
    /// Roles are checked against a composition when one is given (unknown ones named with the
    /// nearest role and the line); without it, `parseOverrides` checks them later.
    public static func overrides(fromFile path: String, composition: Composition? = nil) throws -> [String] {
        let entries = try load(path: path)
        if let composition {
            let roles = composition.roles.map(\.name)
            for e in entries where !roles.contains(e.role) {
                throw FileError(file: path, line: e.line, column: e.column, key: e.role,
                                message: "no role '\(e.role)' in the composition" + Suggestion.hint(e.role, among: roles)
                                    + " (roles: \(roles.joined(separator: ", ")))")
            }
        }
        return entries.map(\.override)
    }

    /// Reads and checks a role-distribution file within `YAMLLimits.roleDistribution`.
    public static func load(path: String) throws -> [FileEntry] {
        let text: String
        do { text = try YAMLLimits.roleDistribution.read(path: path) } catch let e as YAMLLimitError {
            throw FileError(file: path, line: 0, column: 0, message: e.message)
        }
        return try parse(text, file: path)
    }

    /// Parses a role-distribution file: a mapping of role name to a node count (0 to 999) or to a
    /// list of hosts (as in a machine file), sorted by role. The file may come from someone else:
    /// role names must be host names, hosts must read as hosts, and the size is bounded.
    public static func parse(_ text: String, file: String) throws -> [FileEntry] {
        func fail(_ node: Node?, _ key: String?, _ message: String) -> FileError {
            FileError(file: file, line: node?.mark?.line ?? 0, column: node?.mark?.column ?? 0, key: key, message: message)
        }
        let root: Node?
        do { root = try YAMLLimits.roleDistribution.compose(text, file: file) } catch let e as YamlError {
            switch e {
            case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _), .composer(_, let problem, let mark, _):
                throw FileError(file: file, line: mark.line, column: mark.column, message: "invalid YAML: \(problem)")
            default:
                throw FileError(file: file, line: 0, column: 0, message: "invalid YAML: \(e)")
            }
        } catch let e as YAMLLimitError {
            throw FileError(file: file, line: e.line, column: e.column, message: e.message)
        }
        guard let root, case .mapping(let map) = root, !map.isEmpty else {
            throw fail(root, nil, "expected a mapping of role to a node count or a list of hosts (e.g. `server: 1`, `client: [host2, host3]`)")
        }
        var entries: [FileEntry] = []
        var seen: [String: Int] = [:]
        for (k, v) in map {
            guard case .scalar(let ks) = k, isHostname(ks.string) else {
                throw fail(k, nil, "a role name is a host name (lowercase letters, digits and '-', at most 63 characters)")
            }
            let role = ks.string
            if let first = seen[role] { throw fail(k, role, "duplicate role (first at line \(first))") }
            seen[role] = k.mark?.line ?? 0
            let spec: Spec
            switch v {
            case .scalar(let s) where s.style == .plain && Int(s.string) != nil:
                guard let n = Int(s.string), (0...999).contains(n) else {
                    throw fail(v, role, "'\(s.string)' is not a node count (0 to 999)")
                }
                spec = .count(n)
            case .scalar(let s):
                // `client: h2,h3`, as after `-r client=`.
                spec = .hosts(try hosts(s.string.split(separator: ",", omittingEmptySubsequences: false).map(String.init), v, role, fail))
            case .sequence(let seq):
                var names: [String] = []
                for item in seq {
                    guard case .scalar(let s) = item else { throw fail(item, role, "expected a host name, got a collection") }
                    names.append(s.string)
                }
                spec = .hosts(try hosts(names, v, role, fail))
            default:
                throw fail(v, role, "expected a node count (0 to 999) or a list of hosts")
            }
            entries.append(FileEntry(role: role, spec: spec, line: k.mark?.line ?? 0, column: k.mark?.column ?? 0))
        }
        return entries.sorted { $0.role < $1.role }
    }

    /// Hosts as a machine file has them (`host`, `host:port`, `user@host`, `[v6]:port`), at least one.
    static func hosts(_ names: [String], _ node: Node, _ role: String,
                      _ fail: (Node?, String?, String) -> FileError) throws -> [String] {
        guard !names.isEmpty else { throw fail(node, role, "expected at least one host") }
        guard names.count <= 10_000 else { throw fail(node, role, "more than 10000 hosts") }
        for n in names {
            do { _ = try HostList.parseLine(n, at: "") } catch {
                throw fail(node, role, "'\(DebianSource.shown(n))' is not a host (a host name or address, optionally user@ and :port)")
            }
        }
        return names
    }

    /// Whether a YAML file is a role distribution rather than a composition: a mapping without a
    /// `roles:` key. Read within the role-distribution limits; anything else is left for the
    /// composition loader to report.
    public static func isDistributionFile(_ path: String) -> Bool {
        guard let text = try? YAMLLimits.roleDistribution.read(path: path),
              let root = try? YAMLLimits.roleDistribution.compose(text, file: path),
              case .mapping(let map) = root, !map.isEmpty else { return false }
        return !map.contains { k, _ in
            if case .scalar(let s) = k { return s.string == "roles" }
            return false
        }
    }

    /// Returns (node, role) pairs in composition role order.
    public static func resolve(_ composition: Composition, overrides: [String], allowHosts: Bool = false) throws -> [(node: String, role: String)] {
        let specs = try parseOverrides(composition, overrides, allowHosts: allowHosts)
        var out: [(String, String)] = []
        var seen: [String: String] = [:]
        for role in composition.roles {
            let n: Int
            switch specs[role.name] {
            case .count(let c): n = c
            case .hosts(let h): n = h.count
            case nil: n = role.count
            }
            guard n > 0 else { continue }
            for h in role.hostNames(count: n) {
                if let other = seen[h] {
                    throw DeployError.badRoleOverride("\(role.name)=\(n)", "host name '\(h)' collides with a node of role '\(other)'")
                }
                seen[h] = role.name
                out.append((h, role.name))
            }
        }
        if out.isEmpty {
            if overrides.isEmpty { throw DeployError.badInput(composition.file, problem: "no role has a node") }
            throw DeployError.badRoleOverride(overrides.joined(separator: " "), "the role distribution has no node")
        }
        return out
    }

    /// Binds nodes to reserved hosts: roles given hosts by name get them, the others take the
    /// remaining hosts in file order.
    public static func bind(_ composition: Composition, overrides: [String], hosts: [TestbedHost], source: String) throws -> HostBinding {
        let specs = try parseOverrides(composition, overrides, allowHosts: true)
        let nodes = try resolve(composition, overrides: overrides, allowHosts: true)
        var taken = Set<Int>()
        var explicit: [String: TestbedHost] = [:]  // node -> host
        for role in composition.roles {
            guard case .hosts(let names)? = specs[role.name] else { continue }
            let roleNodes = nodes.filter { $0.role == role.name }.map(\.node)
            for (node, name) in zip(roleNodes, names) {
                // `mac=MAC` names a machine by its MAC address (machine files with `host MAC` lines).
                let mac = name.hasPrefix("mac=") ? HostList.normalizedMAC(String(name.dropFirst(4))) : nil
                guard let i = hosts.indices.first(where: { mac != nil ? hosts[$0].mac == mac : (hosts[$0].description == name || hosts[$0].name == name) }) else {
                    throw DeployError.badRoleOverride("\(role.name)=\(names.joined(separator: ","))", "host '\(name)' is not in \(source)")
                }
                guard taken.insert(i).inserted else {
                    throw DeployError.badRoleOverride("\(role.name)=\(names.joined(separator: ","))", "host '\(name)' is given to two nodes")
                }
                explicit[node] = hosts[i]
            }
        }
        let free = hosts.indices.filter { !taken.contains($0) }
        let needed = nodes.count - explicit.count
        guard needed <= free.count else {
            throw DeployError.badInput(source, problem: "the deployment has \(nodes.count) nodes but this file lists \(hosts.count) host(s)"
                + (explicit.isEmpty ? "" : " (\(explicit.count) given by name)") + "; reserve more hosts or use -r ROLE=N")
        }
        var next = free.makeIterator()
        var entries: [HostBinding.Entry] = []
        for n in nodes {
            if let h = explicit[n.node] {
                entries.append(.init(node: n.node, role: n.role, host: h))
            } else if let i = next.next() {
                taken.insert(i)
                entries.append(.init(node: n.node, role: n.role, host: hosts[i]))
            }
        }
        let unused = hosts.indices.filter { !taken.contains($0) }.map { hosts[$0] }
        return HostBinding(entries: entries, unused: unused,
                           minimum: try minimums(composition, overrides: overrides, nodes: nodes))
    }
}
