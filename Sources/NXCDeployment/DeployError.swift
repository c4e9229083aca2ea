import Foundation

/// Why a deployment could not be made, reached or stopped.
public enum DeployError: Error, CustomStringConvertible {
    case noDeployment(String)
    case unknownTarget(String, known: [String], roles: [String])
    case badRoleOverride(String, String)
    case nodesDown([(node: String, reason: String, log: String?)])
    case alreadyRunning(String)
    case toolMissing(String, package: String)
    /// A file the build writes is not there: `path`, and the flavour to build.
    case notBuilt(path: String, flavour: String)
    /// A file operation failed: what was done (`write`, `create`, …), on which path, and why.
    case file(_ operation: String, path: String, reason: String)
    /// A system call failed (`socket`, `pipe`, `bind`), with errno.
    case systemCall(String, errno: Int32, context: String? = nil)
    /// More nodes than a method starts at once.
    case tooManyNodes(count: Int, limit: Int, unit: String)
    /// A program nxc ran failed: what it was for, and its own error (with argv and output).
    case commandFailed(String, underlying: any Error)
    /// An input file that cannot be used: where (`FILE` or `FILE:LINE`), and why.
    case badInput(_ place: String, problem: String)
    /// A flavour whose start method needs root, run as another user: the flavour, and what needs it.
    case needsRoot(flavour: String, because: String)
    /// A command-line option the start method cannot use as given (`--http-port 0`, a `--kadeploy` program that is not there).
    case badOption(_ option: String, problem: String)
    /// The deployment is recorded but its nodes are not running.
    case notRunning(composition: String, flavour: String)
    /// A flavour that deploys onto reserved hosts, given none.
    case needsHosts(flavour: String)
    /// Options of `nxc start` the flavour's start method does not take, and the flavours that take them.
    case optionsNotTaken(flavour: String, options: [String], takenBy: [String])
    /// Hosts or nodes that failed a step (`the checks`, `wait`), each with why.
    case failedOn(_ step: String, [(target: String, reason: String)], unit: String)
    /// A program nxc started did not come up as it should: which, why, and the log to read.
    case processFailed(_ program: String, problem: String, log: String? = nil)
    /// Something too large for where it must go (the kernel command line): what, its size, the limit, what to do.
    case tooLarge(_ what: String, size: Int, limit: Int, hint: String)
    /// A service nxc needs on this machine does not answer (the Docker engine): which, what it said, how to start it.
    case serviceDown(_ service: String, detail: String, hint: String)
    /// What `stop` could not stop.
    case couldNotStop([String])

    public var description: String {
        switch self {
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
        case .notBuilt(let path, let flavour): return "error: \(path) is missing; run `nxc build -f \(flavour)` first"
        case .file(let op, let path, let reason): return "error: cannot \(op) \(path): \(reason)"
        case .systemCall(let call, let e, let context):
            return "error: " + (context.map { $0 + ": " } ?? "") + "\(call): \(String(cString: strerror(e)))"
        case .tooManyNodes(let count, let limit, let unit): return "error: at most \(limit) \(unit) per deployment, asked for \(count)"
        case .commandFailed(let what, let e): return "error: \(what): \(e)"
        case .badInput(let place, let problem): return "error: \(place): \(problem)"
        case .badOption(let option, let problem): return "error: \(option): \(problem)"
        case .notRunning(let composition, let flavour): return "error: \(composition) (\(flavour)) is not running; run `nxc start`"
        case .needsHosts(let flavour):
            return "error: flavour \(flavour) deploys onto reserved hosts: give -m MACHINE_FILE or set $OAR_NODEFILE"
        case .optionsNotTaken(let flavour, let options, let takers):
            return "error: flavour \(flavour) does not take \(options.joined(separator: ", "))"
                + (takers.isEmpty ? "" : "; flavours that do: \(takers.joined(separator: ", "))")
        case .failedOn(let step, let list, let unit):
            return "error: \(list.count) \(unit)(s) failed \(step): " + list.map { "\($0.target): \($0.reason)" }.joined(separator: "; ")
        case .processFailed(let program, let problem, let log):
            return "error: \(program): \(problem)" + (log.map { " (see \($0))" } ?? "")
        case .tooLarge(let what, let size, let limit, let hint):
            return "error: \(what) would be \(size) bytes, over the limit of \(limit); \(hint)"
        case .serviceDown(let service, let detail, let hint): return "error: no \(service) answers (\(detail)); \(hint)"
        case .couldNotStop(let list): return "error: could not stop: \(list.joined(separator: ", "))"
        case .needsRoot(let flavour, let because):
            return "error: flavour \(flavour) runs as root (\(because)); run nxc start as root"
        }
    }
}
