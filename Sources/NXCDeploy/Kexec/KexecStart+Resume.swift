import Foundation
import NXCDeployment
import NXCTestbed
import NXCBuild
import NXCStore

/// `nxc start --resume`: after a start on reserved hosts that left nodes down, redo only those,
/// with the document the others hold. The last start's report says which host plays which node
/// and which were up; each of those is asked whether it still answers as its node.
extension KexecStart {
    struct ResumePlan: Sendable {
        var report: TestbedReport
        /// The document of the last start, and its bytes as the nodes got them.
        var previous: Deployment
        var compact: Data
        /// In the document's order: nodes still up (state "up"), the others to redo.
        var runs: [TestbedRun]
        /// Hosts of the machine file that the last start did not use.
        var spares: [TestbedHost]

        var up: [TestbedRun] { runs.filter { $0.state == "up" } }

        /// The document with the nodes that spares took (in this start) as those spares are.
        func document(runs: [TestbedRun], ctx: StartContext) -> Deployment {
            let moved = runs.filter { $0.replaces != nil }
            guard !moved.isEmpty else { return previous }
            var doc = previous
            let fresh = Deployment.fromFacts(composition: ctx.composition.name, flavour: ctx.flavour.name, key: ctx.identity.publicKey,
                                             runs: moved)
            for (node, entry) in fresh.nodes { doc.nodes[node] = entry }
            return doc
        }

        static func load(ctx: StartContext, binding: HostBinding, env: TestbedSSH, bundle: Bundle, timeout: Double) async throws -> ResumePlan {
            let reportPath = ctx.reportFile
            guard FileManager.default.fileExists(atPath: reportPath) else {
                throw DeployError.badOption("--resume", problem: "no report of an earlier start of \(ctx.composition.name) (\(ctx.flavour.name)) at \(reportPath)")
            }
            let report = try TestbedReport.load(path: reportPath)
            let dry = ctx.options.dryRun
            if report.dryRun && !dry {
                throw DeployError.badOption("--resume", problem: "the last start was a dry run, which kexec'd nothing; start without "
                                            + "--resume, or resume the dry run (--resume --dry-run)")
            }
            if !report.dryRun && dry {
                throw DeployError.badOption("--resume", problem: "with --dry-run it resumes a dry run; the last start kexec'd its hosts")
            }
            let compactPath = ctx.runDirectory + "/deployment.json"
            guard let compact = FileManager.default.contents(atPath: compactPath) else {
                throw DeployError.badOption("--resume", problem: "the last start's document is gone (\(compactPath)); start without --resume")
            }
            let previous = try Deployment.load(path: ctx.deploymentFile)
            let sha = sha256(bytes: Array(compact))
            var planned: [(TestbedRun, Bool)] = []
            for node in previous.order {
                // The host that played it last: not one a spare replaced.
                guard let record = report.hosts.last(where: { $0.node == node && $0.state != "replaced" }),
                      let host = try? HostList.parse(record.host, file: reportPath).first,
                      let role = previous.nodes[node]?.role else {
                    throw DeployError.badInput(reportPath, problem: "no host for node \(node) of \(ctx.deploymentFile); start without --resume")
                }
                var r = TestbedRun(entry: .init(node: node, role: role, host: host))
                r.facts["document"] = sha
                planned.append((r, record.state == (dry ? "ready" : "up")))
            }
            // Nodes reported up: still up when they answer as themselves. A dry run's hosts reported
            // ready: still ready when they hold the whole bundle (kept as "up": left alone).
            let runs = await Parallel.map(planned, limit: ctx.options.parallel) { item -> TestbedRun in
                var (r, wasUp) = item
                guard wasUp else { return r }
                if dry {
                    recheck(&r, env: env, bundle: bundle, timeout: timeout)
                    if r.facts["arch"] != nil && missing(r, bundle: bundle).isEmpty { r.state = "up" }
                    return r
                }
                let argv = env.argv(r.entry.host, afterKexec: true, command: ["cat", "/etc/nxc/hostname"])
                if let (st, out) = try? Command.status(argv, timeout: 30), st == 0,
                   out.trimmingCharacters(in: .whitespacesAndNewlines) == r.entry.node {
                    r.state = "up"
                }
                return r
            }
            let used = Set(report.hosts.map(\.host))
            let spares = (binding.entries.map(\.host) + binding.unused).filter { !used.contains($0.description) }
            let redo = runs.filter { $0.state != "up" }
            ctx.progress("resume: \(runs.count - redo.count) " + (dry ? "host(s) still hold the bundle from the last dry run" : "node(s) still up from the last start")
                         + "; to redo: "
                         + (redo.isEmpty ? "none" : redo.map { "\($0.entry.node) on \($0.entry.host)" }.joined(separator: ", "))
                         + (spares.isEmpty ? "" : "; \(spares.count) spare(s)"))
            return ResumePlan(report: report, previous: previous, compact: compact, runs: runs, spares: spares)
        }
    }

    /// Every node up that booted with another document than `final` gets it over SSH
    /// (`nxc-agent update`: /etc/hosts and /etc/nxc/deployment.json), so that all end with the same.
    static func updateStale(_ runs: [TestbedRun], final: Data, ctx: StartContext, env: TestbedSSH) async {
        let sha = sha256(bytes: Array(final))
        let stale = runs.filter { $0.state == "up" && $0.facts["document"] != sha }
        guard !stale.isEmpty else { return }
        let path = ctx.runDirectory + "/deployment.json"
        let updated = await Parallel.map(stale, limit: ctx.options.parallel) { r -> String? in
            let argv = env.argv(r.entry.host, afterKexec: true, command: ["nxc-agent", "update"])
            do { try Command.run(argv, timeout: 60, inputFile: path); return nil } catch { return "\(r.entry.node): \(error)" }
        }
        let failures = updated.compactMap { $0 }
        ctx.progress("deployment: the final document sent to \(stale.count - failures.count) node(s) that had an earlier one"
                     + (failures.isEmpty ? "" : "; not to " + failures.joined(separator: "; ")))
    }
}
