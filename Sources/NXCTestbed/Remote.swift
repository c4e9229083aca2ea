import Foundation
import NXCDeployment
import NXCBuild

/// Runs commands on nodes over SSH (OpenSSH client, argv only; the remote command is quoted once).
public enum SSH {
    public static func options(identity: SSHIdentity, knownHosts: String, connectTimeout: Int = 10) -> [String] {
        ["-i", identity.privateKey, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
         "-o", "StrictHostKeyChecking=accept-new", "-o", "UserKnownHostsFile=\(knownHosts)",
         "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=\(connectTimeout)", "-o", "ServerAliveInterval=15"]
    }

    public static func argv(endpoint: Deployment.SSHEndpoint, identity: SSHIdentity, knownHosts: String,
                            command: [String], interactive: Bool) -> [String] {
        var a = ["ssh"] + options(identity: identity, knownHosts: knownHosts)
        a += interactive ? ["-t"] : ["-T"]
        // `--` before the host: neither the host nor the command can be read as an option.
        a += ["-p", String(endpoint.port), "-l", endpoint.user, "--", endpoint.host]
        if !command.isEmpty { a.append(ShellQuote.join(command)) }
        return a
    }
}

/// Waits until nodes answer SSH as themselves.
public enum Readiness {
    public struct Failure: Sendable { public var node: String; public var reason: String }

    /// Polls every node until `ssh … cat /etc/nxc/hostname` prints its name, or `timeout` passes,
    /// or `alive(node)` says its machine is gone. Progress goes to `progress`.
    public static func waitForSSH(nodes: [String], deployment: Deployment, identity: SSHIdentity, knownHosts: String,
                                  timeout: Double, alive: @escaping @Sendable (String) -> Bool,
                                  progress: @escaping @Sendable (String) -> Void) async -> [Failure] {
        let start = Date()
        let deadline = start.addingTimeInterval(timeout)
        let total = nodes.count
        let counter = ReadyCounter()
        let results: [Failure?] = await Parallel.map(nodes, limit: max(1, nodes.count)) { node in
            guard let ep = deployment.nodes[node]?.ssh else { return Failure(node: node, reason: "no SSH endpoint") }
            var last = "no SSH banner yet"
            while Date() < deadline {
                if !alive(node) { return Failure(node: node, reason: "its machine stopped") }
                if Processes.sshBanner(host: ep.host, port: ep.port, timeout: 3) != nil {
                    let argv = SSH.argv(endpoint: ep, identity: identity, knownHosts: knownHosts,
                                        command: ["cat", "/etc/nxc/hostname", "/run/nxc/ready"], interactive: false)
                    if let (status, out) = try? Command.status(argv, timeout: 20) {
                        let lines = out.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
                        if status == 0, lines.first == node {
                            let n = counter.increment()
                            progress(String(format: "%@ is up (%d/%d, %.0f s)", node, n, total, Date().timeIntervalSince(start)))
                            return nil
                        }
                        last = status == 0 ? "answers as '\(lines.first ?? "")', expected '\(node)'"
                                           : "SSH: \(out.split(separator: "\n").last ?? "exit \(status)")"
                    }
                }
                Thread.sleep(forTimeInterval: 1)
            }
            return Failure(node: node, reason: "not ready after \(Int(timeout)) s (\(last))")
        }
        return results.compactMap { $0 }.sorted { $0.node < $1.node }
    }
}

final class ReadyCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func increment() -> Int { lock.lock(); defer { lock.unlock() }; n += 1; return n }
}
