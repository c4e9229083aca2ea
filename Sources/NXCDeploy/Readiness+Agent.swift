import Foundation
import NXCDeployment
import NXCTestbed
import NXCBuild

/// Readiness of nodes that nxc reaches without SSH (containers): the agent's marker files and the
/// role's services, read with the method's own way into the node (`docker exec`, `nsenter`).
extension Readiness {
    /// nil when the node is ready: its agent has finished as this node and its role's services are
    /// started; otherwise why not ("failed: …" and "exited: …" are final).
    /// - `run`: runs an argv on the node, (status, output), nil when it did not answer in time.
    /// - `machineState`: "running" while the node's machine runs; "exited", "dead" or "stopped" when it is gone.
    public static func agentAndServices(node: String, units: [String], logHint: String,
                                        run: ([String]) -> (Int32, String)?, machineState: () -> String) -> String? {
        guard let (st, out) = run(["cat", "/run/nxc/ready"]) else { return "no answer in time" }
        func agentFailure() -> String? {
            guard let (fst, failed) = run(["cat", "/run/nxc/failed"]), fst == 0 else { return nil }
            return "failed: the agent failed: " + failed.split(separator: "\n").joined(separator: "; ")
        }
        if st != 0 {
            let state = machineState()
            if ["exited", "dead", "stopped"].contains(state) { return "exited: the node stopped (\(logHint))" }
            return agentFailure() ?? "agent not done (\(state))"
        }
        let name = out.trimmingCharacters(in: .whitespacesAndNewlines)
        if name != node { return "failed: the agent says it is \(name), not \(node)" }
        if let failed = agentFailure() { return failed }
        guard !units.isEmpty else { return nil }
        // One state per unit on stdout; stderr (warnings) would add lines that are no state.
        guard let (_, uout) = run(["sh", "-c", #"systemctl is-active "$@" 2>/dev/null"#, "sh"] + units) else {
            return "systemctl did not answer in time"
        }
        return servicesVerdict(units: units, output: uout)
    }

    /// What `systemctl is-active UNITS…` says of a role's services: nil when all are started, that is
    /// active, or activating (whether a service answers is for `nxc wait` and the driver to tell, as
    /// on the other flavours). A unit queued behind another that is starting is `inactive` until
    /// then, so anything a unit waits for must come before this wait: the deployment's secret does
    /// (`deliversSecret`). Its exit status is no verdict: it is 0 as soon as one unit is active.
    public static func servicesVerdict(units: [String], output uout: String) -> String? {
        let states = uout.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        let started: Set<String> = ["active", "activating", "reloading"]
        if states.count == units.count, states.allSatisfy({ started.contains($0) }) { return nil }
        if states.contains("failed") { return "failed: service(s) " + zip(units, states).filter { $0.1 == "failed" }.map(\.0).joined(separator: ", ") + " failed" }
        return "services: " + zip(units, states).map { "\($0.0) \($0.1)" }.joined(separator: ", ")
    }

    /// Asks `check` about every node once a second, 8 at a time, until each is ready (nil), one has
    /// failed for good ("failed: …", "exited …"), or `timeout` seconds pass; throws naming the nodes
    /// that are not up, each with `log(node)`.
    public static func poll(_ nodes: [(node: String, role: String)], timeout: Double, progress: @Sendable (String) -> Void,
                            log: (String) -> String?,
                            check: @escaping @Sendable (_ node: String, _ role: String) -> String?) async throws {
        let deadline = Date().addingTimeInterval(timeout)
        var pending = nodes
        var last: [String: String] = [:]
        let t0 = Date()
        func final(_ why: String?) -> Bool { why?.hasPrefix("failed:") == true || why?.hasPrefix("exited") == true }
        while !pending.isEmpty && Date() < deadline {
            let results = await Parallel.map(pending, limit: 8) { n in (n.node, check(n.node, n.role)) }
            let failed = results.filter { final($0.1) }
            if !failed.isEmpty {
                throw DeployError.nodesDown(failed.map { ($0.0, $0.1 ?? "", log($0.0)) })
            }
            var still: [(node: String, role: String)] = []
            for (i, r) in results.enumerated() {
                if let why = r.1 {
                    last[r.0] = why
                    still.append(pending[i])
                } else {
                    progress(String(format: "%@ is ready (%.0f s)", r.0, Date().timeIntervalSince(t0)))
                }
            }
            pending = still
            if !pending.isEmpty { try? await Task.sleep(nanoseconds: 1_000_000_000) }
        }
        if !pending.isEmpty {
            throw DeployError.nodesDown(pending.map {
                ($0.node, "not ready within \(Int(timeout)) s: \(last[$0.node] ?? "no answer")", log($0.node))
            })
        }
    }
}
