import Glibc

/// Everything that can go wrong in the agent, each case carrying the path,
/// key, node or command that failed so the message says what to fix.
enum AgentError: Error, CustomStringConvertible {
    /// A system call on a file failed.
    case io(path: String, operation: String, errno: Int32)
    /// A file was larger than the agent is willing to read.
    case tooLarge(path: String, limit: Int)
    /// A JSON document could not be parsed at all.
    case json(origin: String, line: Int, column: Int, message: String)
    /// A JSON document parsed but a key has the wrong type or value.
    case invalid(origin: String, key: String, message: String)
    /// `nxc.deployment=` on the kernel command line is not base64.
    case badBase64(origin: String)
    /// No source named this node.
    case noNodeName
    /// No source gave a deployment document.
    case noDeployment
    /// The deployment does not list this node.
    case unknownNode(name: String, origin: String, known: [String])
    /// A program to run was not found in the fixed search path.
    case programNotFound(name: String, searched: [String])
    /// posix_spawn failed.
    case spawn(command: String, errno: Int32)
    /// A child did not finish in time and was killed.
    case timeout(command: String, seconds: Int)
    /// A child finished unsuccessfully.
    case failed(command: String, status: String)
    /// A command line the agent does not understand.
    case usage(String)
    /// `nxc.deployment_url=` is not a URL the agent can fetch.
    case badURL(url: String, message: String)
    /// The deployment could not be fetched from `nxc.deployment_url` in time.
    case fetch(url: String, seconds: Int, attempts: Int, reason: String)
    /// The deployment is at a URL that only `boot` fetches, and it has not yet in this boot.
    case notFetched(url: String)
    /// A kernel command-line word (`nxc.if=`, `nxc.route=`) that cannot be used.
    case kernelParameter(word: String, message: String)

    var description: String {
        switch self {
        case let .io(path, operation, code):
            return "\(operation) \(path): \(errorString(code))"
        case let .tooLarge(path, limit):
            return "\(path) is larger than \(limit) bytes"
        case let .json(origin, line, column, message):
            return "\(origin): line \(line), column \(column): \(message)"
        case let .invalid(origin, key, message):
            return "\(origin): \(key.isEmpty ? "document" : "key \"\(key)\""): \(message)"
        case let .badBase64(origin):
            return "\(origin) is not valid base64 (standard alphabet A-Z a-z 0-9 + /, optional = padding)"
        case .noNodeName:
            return "no node name: give nxc.host=NAME on the kernel command line, NXC_HOST=NAME in the "
                + "environment (of this process or of PID 1), or --host NAME"
        case .noDeployment:
            return "no deployment document: give nxc.deployment=BASE64 or nxc.deployment_url=URL on the "
                + "kernel command line, --deployment FILE, NXC_DEPLOYMENT_FILE=FILE, or provide /etc/nxc/deployment.json"
        case let .unknownNode(name, origin, known):
            let list = known.isEmpty ? "it lists no nodes" : "it lists: " + known.joined(separator: ", ")
            return "node \"\(name)\" is not in the deployment (\(origin)); \(list)"
        case let .programNotFound(name, searched):
            return "\(name) not found in \(searched.joined(separator: ":"))"
        case let .spawn(command, code):
            return "cannot start \(command): \(errorString(code))"
        case let .timeout(command, seconds):
            return "\(command) did not finish within \(seconds) s and was killed"
        case let .failed(command, status):
            return "\(command) \(status)"
        case let .usage(message):
            return message
        case let .badURL(url, message):
            return "nxc.deployment_url \"\(url)\" \(message)"
        case let .fetch(url, seconds, attempts, reason):
            return "could not fetch the deployment from \(url) within \(seconds) s "
                + "(\(attempts) attempt\(attempts == 1 ? "" : "s")): \(reason)"
        case let .notFetched(url):
            return "the deployment is at \(url) (nxc.deployment_url): nxc-agent boot fetches it, "
                + "and has not in this boot (no \(BootContext.fetchedPath))"
        case let .kernelParameter(word, message):
            return "kernel command line: \(word): \(message)"
        }
    }
}

/// The C library's message for an errno value.
func errorString(_ code: Int32) -> String {
    guard let message = strerror(code) else { return "error \(code)" }
    return String(cString: message)
}
