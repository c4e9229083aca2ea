import Foundation
import NXCComposition
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
                throw DeployError.badRoleOverride(o, "no role '\(parts[0])' in the composition (roles: \(composition.roles.map(\.name).joined(separator: ", ")))")
            }
            if let n = Int(parts[1]) {
                guard n >= 0, n <= 999 else { throw DeployError.badRoleOverride(o, "'\(parts[1])' is not a node count (0 to 999)") }
                specs[parts[0]] = .count(n)
            } else if !allowHosts {
                throw DeployError.badRoleOverride(o, "'\(parts[1])' is not a node count (0 to 999); hosts by name are for testbed flavours")
            } else {
                let hosts = parts[1].split(separator: ",").map(String.init)
                guard !hosts.isEmpty, hosts.allSatisfy({ !$0.isEmpty }) else {
                    throw DeployError.badRoleOverride(o, "expected a comma-separated list of hosts")
                }
                specs[parts[0]] = .hosts(hosts)
            }
        }
        return specs
    }

    /// Reads a role-distribution file (`server: 1`, `client: [host2, host3]`) as `-r` overrides.
    public static func overrides(fromFile path: String) throws -> [String] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw DeployError.invalid("\(path): cannot read the role distribution file")
        }
        let any: Any?
        do { any = try Yams.load(yaml: text) } catch { throw DeployError.invalid("\(path): invalid YAML: \(error)") }
        guard let map = any as? [String: Any] else {
            throw DeployError.invalid("\(path): expected a mapping of role to a count or a list of hosts")
        }
        var out: [String] = []
        for (role, v) in map.sorted(by: { $0.key < $1.key }) {
            if let n = v as? Int { out.append("\(role)=\(n)") }
            else if let list = v as? [Any], !list.isEmpty { out.append("\(role)=" + list.map { "\($0)" }.joined(separator: ",")) }
            else if let s = v as? String { out.append("\(role)=\(s)") }
            else { throw DeployError.invalid("\(path): \(role): expected a count or a list of hosts") }
        }
        return out
    }

    /// Whether a YAML file is a role distribution rather than a composition (it has no `roles:` key).
    public static func isDistributionFile(_ path: String) -> Bool {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8),
              let map = (try? Yams.load(yaml: text)) as? [String: Any] else { return false }
        return map["roles"] == nil && !map.isEmpty
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
        if out.isEmpty { throw DeployError.invalid("the role distribution has no node") }
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
                guard let i = hosts.indices.first(where: { hosts[$0].description == name || hosts[$0].name == name }) else {
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
            throw DeployError.invalid("the deployment has \(nodes.count) nodes but \(source) lists \(hosts.count) host(s)"
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
        return HostBinding(entries: entries, unused: unused)
    }
}
