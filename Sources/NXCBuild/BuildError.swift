import NXCComposition

/// Why a build failed, naming the composition entry, the host tool or the log to read.
public enum BuildError: Error, CustomStringConvertible {
    case unknownPackage(Located<String>)
    case missingService(Located<String>, role: String)
    case toolMissing(String, package: String)
    case stepFailed(String, log: String, tail: String)
    /// A file operation failed: what was done (`create`, `write`), on which path, and why.
    case file(_ operation: String, path: String, reason: String)
    /// An archive (or one of its members, or a line of its SHA256SUMS) that cannot be used: where, and why.
    case badArchive(_ place: String, problem: String)
    /// An entry of the composition that the build found unusable (a service that is no unit name).
    case badEntry(Located<String>, problem: String)
    /// An input that cannot be used: where (a file, a mirror), and why.
    case badInput(_ place: String, problem: String)
    /// The image lacks what the artefact kind needs: what, and the package that brings it.
    case imageLacks(_ what: String, flavour: String?, package: String)
    /// `--frozen` or a lock's versions: the build differs from the lock (what differs, and what to do).
    case lockMismatch(lock: String, differences: String)
    /// A package the image has, without the .deb record the lock needs.
    case notLockable(package: String, version: String, root: String)
    /// The agent binary, which every image carries, is not there.
    case agentMissing

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
        case .file(let op, let path, let reason):
            return "error: cannot \(op) \(path): \(reason)"
        case .badArchive(let place, let problem), .badInput(let place, let problem):
            return "error: \(place): \(problem)"
        case .badEntry(let e, let problem):
            return "\(e.location): error: \(e.key): '\(e.value)' \(problem)"
        case .imageLacks(let what, let flavour, let package):
            return "error: the image has no \(what); " + (flavour.map { "flavour \($0)" } ?? "the flavour") + " must install \(package)"
        case .lockMismatch(let lock, let differences):
            return "error: the build does not match \(lock):\n" + differences
        case .notLockable(let package, let version, let root):
            return "error: \(package) \(version) is installed in \(root) but no apt index there lists its .deb; cannot lock it"
        case .agentMissing:
            return "error: the nxc-agent binary was not found beside nxc; build it (`make`) or set NXC_AGENT"
        }
    }
}
