import NXCComposition

/// Which nodes a deployment has: counts from the composition, overridden by `-r role=N`.
public enum RoleDistribution {
    /// Returns (node, role) pairs in composition role order.
    public static func resolve(_ composition: Composition, overrides: [String]) throws -> [(node: String, role: String)] {
        var counts: [String: Int] = [:]
        for o in overrides {
            let parts = o.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, !parts[0].isEmpty else {
                throw DeployError.badRoleOverride(o, "expected ROLE=N")
            }
            guard composition.role(named: parts[0]) != nil else {
                throw DeployError.badRoleOverride(o, "no role '\(parts[0])' in the composition (roles: \(composition.roles.map(\.name).joined(separator: ", ")))")
            }
            guard let n = Int(parts[1]), n >= 0, n <= 999 else {
                throw DeployError.badRoleOverride(o, "'\(parts[1])' is not a node count (0 to 999)")
            }
            counts[parts[0]] = n
        }
        var out: [(String, String)] = []
        var seen: [String: String] = [:]
        for role in composition.roles {
            let n = counts[role.name] ?? role.count
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
}
