import Foundation
import NXCDeployment
import NXCBuild

/// What `nxc wait` waits for on each node.
public enum WaitCondition: Sendable, CustomStringConvertible {
    /// A systemd unit is active.
    case unit(String)
    /// Something listens on this TCP port (on any address of the node).
    case port(Int)
    /// A shell command exits 0 on the node.
    case command(String)

    /// The check, run on the node.
    var remote: [String] {
        switch self {
        case .unit(let u): return ["systemctl", "is-active", "--quiet", u]
        case .port(let p): return ["sh", "-c", #"ss -Hltn "sport = :$1" | grep -q ."#, "sh", String(p)]
        case .command(let c): return ["sh", "-c", c]
        }
    }

    public var description: String {
        switch self {
        case .unit(let u): return "unit \(u) active"
        case .port(let p): return "TCP port \(p) listening"
        case .command(let c): return "`\(c)` succeeding"
        }
    }
}

extension Operations {
    /// Polls every node of `target` until `condition` holds there, or `timeout` passes; throws
    /// naming the nodes where it never did.
    public static func wait(_ active: ActiveDeployment, target: String, condition: WaitCondition, timeout: Double,
                            progress: @escaping @Sendable (String) -> Void) async throws {
        let state = try active.requireState()
        let nodes = try active.deployment.resolve(target)
        let method = active.method
        let deployment = active.deployment
        let start = Date()
        let deadline = start.addingTimeInterval(timeout)
        let results = await Parallel.map(nodes, limit: 64) { node -> (target: String, reason: String)? in
            let argv = method.remoteCommand(node: node, deployment: deployment, state: state, command: condition.remote,
                                            interactive: false)
            var last = "not checked yet"
            repeat {
                if let (st, out) = try? Command.status(argv, timeout: 30) {
                    if st == 0 {
                        progress(String(format: "%@: %@ (%.1f s)", node, condition.description, Date().timeIntervalSince(start)))
                        return nil
                    }
                    let said = out.split(separator: "\n").last.map(String.init) ?? ""
                    last = "exit \(st)" + (said.isEmpty ? "" : ": \(said)")
                } else {
                    last = "no answer in 30 s"
                }
                if Date() >= deadline { break }
                Thread.sleep(forTimeInterval: 1)
            } while Date() < deadline
            return (node, "not \(condition.description) after \(Int(timeout)) s (last check: \(last))")
        }
        let failed = results.compactMap { $0 }
        if !failed.isEmpty { throw DeployError.failedOn("nxc wait", failed, unit: "node") }
    }
}
