import NXCComposition

/// Why a build failed, naming the composition entry, the host tool or the log to read.
public enum BuildError: Error, CustomStringConvertible {
    case unknownPackage(Located<String>)
    case missingService(Located<String>, role: String)
    case toolMissing(String, package: String)
    case stepFailed(String, log: String, tail: String)
    case invalid(String)
    /// A file operation failed: what was done (`create`, `write`), on which path, and why.
    case file(_ operation: String, path: String, reason: String)
    /// An archive (or one of its members, or a line of its SHA256SUMS) that cannot be used: where, and why.
    case badArchive(_ place: String, problem: String)

    public var description: String {
        switch self {
        case .unknownPackage(let p):
            return "\(p.location): error: \(p.key): package '\(p.value)' does not exist in the mirror (check its name with `apt-cache search`)"
        case .missingService(let s, let role):
            return "\(s.location): error: \(s.key): no package of role '\(role)' provides the systemd unit '\(s.value)'"
        case .toolMissing(let tool, let package):
            return "error: '\(tool)' is not installed; install it with: apt-get install \(package)"
        case .stepFailed(let step, let log, let tail):
            return "error: \(step) failed (full log: \(log))\n\(tail)"
        case .invalid(let why):
            return "error: \(why)"
        case .file(let op, let path, let reason):
            return "error: cannot \(op) \(path): \(reason)"
        case .badArchive(let place, let problem):
            return "error: \(place): \(problem)"
        }
    }
}
