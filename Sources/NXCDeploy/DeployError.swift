/// Why a deployment could not be made, reached or stopped.
public enum DeployError: Error, CustomStringConvertible {
    case invalid(String)
    case noDeployment(String)
    case unknownTarget(String, known: [String], roles: [String])
    case badRoleOverride(String, String)
    case nodesDown([(node: String, reason: String, log: String?)])
    case alreadyRunning(String)
    case toolMissing(String, package: String)

    public var description: String {
        switch self {
        case .invalid(let s): return "error: \(s)"
        case .noDeployment(let p): return "error: no deployment at \(p); run `nxc start` first"
        case .unknownTarget(let t, let known, let roles):
            return "error: '\(t)' is neither a node (\(known.joined(separator: ", "))) nor a role (\(roles.joined(separator: ", ")))"
        case .badRoleOverride(let arg, let why): return "error: -r \(arg): \(why)"
        case .nodesDown(let list):
            var s = "error: \(list.count) node(s) did not come up: \(list.map(\.node).joined(separator: ", "))"
            for n in list {
                s += "\n  \(n.node): \(n.reason)"
                if let log = n.log { s += " (console log: \(log))" }
            }
            return s
        case .alreadyRunning(let s): return "error: \(s)"
        case .toolMissing(let t, let p): return "error: '\(t)' is not installed; install it with: apt-get install \(p)"
        }
    }
}
