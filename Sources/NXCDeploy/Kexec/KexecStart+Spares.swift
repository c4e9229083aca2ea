import Foundation
import NXCDeployment
import NXCTestbed
import NXCBuild
import NXCStore

/// Hosts of the machine file beyond the nodes are spares: one takes the node of a host that
/// failed before the kexec, and the deployment document, made after, is the same for every node.
/// When no spare is left, a role that keeps its `min` goes on without the node.
extension KexecStart {
    /// Gives the node of each failed run in `runs` to a spare, which `prepare` brings to where
    /// the others are (checked, bundle staged); again while spares fail and others remain. The
    /// failed runs move to `retired`, with the spare that replaced them.
    static func replaceFailed(_ runs: [TestbedRun], spares: inout [TestbedHost], retired: inout [TestbedRun], parallel: Int,
                              progress: @escaping @Sendable (String) -> Void,
                              prepare: @escaping @Sendable (inout TestbedRun) -> Void) async -> [TestbedRun] {
        var runs = runs
        while true {
            let failed = runs.indices.filter { runs[$0].failed }
            guard !failed.isEmpty, !spares.isEmpty else { return runs }
            let pairs = Array(zip(failed, spares))
            spares.removeFirst(pairs.count)
            let snapshot = runs
            let fresh = await Parallel.map(pairs, limit: parallel) { (i, spare) -> TestbedRun in
                let old = snapshot[i]
                var entry = old.entry
                entry.host = spare
                var r = TestbedRun(entry: entry)
                r.replaces = old.entry.host
                progress("\(spare): spare, takes \(entry.node) (role \(entry.role)) from \(old.entry.host), "
                         + "whose \(old.failedPhase?.rawValue ?? "check") failed")
                prepare(&r)
                return r
            }
            for ((i, spare), r) in zip(pairs, fresh) {
                var old = runs[i]
                old.replacedBy = spare
                old.state = "replaced by \(spare)"
                retired.append(old)
                runs[i] = r
            }
        }
    }

    /// After the kexecs: each host that failed there (kexec, boot) gives its node to a spare, which
    /// `prepare` checks and gives the bundle; the document is made again (`makeDocument`) from the
    /// hosts as they now are, written where the first one was, and the spares are kexec'd with it;
    /// again while spares fail and others remain. Returns the runs and the last document (the
    /// nodes up before get it afterwards: updateStale).
    static func replaceAfterKexec(_ runs: [TestbedRun], doc: Deployment, spares: inout [TestbedHost], retired: inout [TestbedRun],
                                  ctx: StartContext, server: DeploymentServer?,
                                  makeDocument: @Sendable ([TestbedRun]) -> Deployment,
                                  kexecAll: @Sendable ([TestbedRun], Deployment, Data) async -> [TestbedRun],
                                  prepare: @escaping @Sendable (inout TestbedRun) -> Void) async throws -> ([TestbedRun], Deployment) {
        var runs = runs
        var doc = doc
        while !spares.isEmpty && runs.contains(where: \.failed) {
            let before = runs.map(\.entry.host)
            runs = await replaceFailed(runs, spares: &spares, retired: &retired, parallel: ctx.options.parallel,
                                       progress: ctx.progress, prepare: prepare)
            guard runs.map(\.entry.host) != before else { break }
            doc = makeDocument(runs)
            let compact = try doc.encoded(pretty: false)
            try writeAtomically(try doc.encoded(), to: ctx.deploymentFile)
            try writeAtomically(compact, to: ctx.runDirectory + "/deployment.json")
            server?.replace(document: compact)
            ctx.progress("deployment: made again with the spares that took the nodes of hosts that did not come back")
            runs = await kexecAll(runs, doc, compact)
        }
        return (runs, doc)
    }

    /// Splits failed runs into those the deployment can go without (their role keeps at least its
    /// minimum of runs that did not fail) and the rest. Returns the runs to go on with, in order,
    /// and the dropped ones with what their role keeps.
    static func settle(_ runs: [TestbedRun], minimum: [String: Int]) -> (kept: [TestbedRun], dropped: [(TestbedRun, TestbedReport.Missing)]) {
        var kept: [TestbedRun] = []
        var dropped: [(TestbedRun, TestbedReport.Missing)] = []
        for r in runs {
            let role = r.entry.role
            let members = runs.filter { $0.entry.role == role }
            let ok = members.filter { !$0.failed }.count
            let least = minimum[role] ?? members.count
            if r.failed && ok >= least {
                dropped.append((r, TestbedReport.Missing(node: r.entry.node, role: role, running: ok, minimum: least)))
            } else {
                kept.append(r)
            }
        }
        return (kept, dropped)
    }

    /// The report of a start: every host bound, replaced or dropped, and the spares left.
    /// On --resume, the hosts this start left alone keep their lines of the `earlier` report.
    static func report(_ ctx: StartContext, runs: [TestbedRun], retired: [TestbedRun],
                       dropped: [(TestbedRun, TestbedReport.Missing)], spares: [TestbedHost], bundle: Bundle, started: Date,
                       earlier: TestbedReport? = nil) throws {
        let sizes = bundle.fileSizes
        let touched = (runs + dropped.map(\.0) + retired).filter { !$0.phases.isEmpty || $0.state != "up" }
        let again = Set(touched.map(\.entry.host.description))
        let hosts = (earlier?.hosts ?? []).filter { !again.contains($0.host) } + touched.map { TestbedReport.host($0, sizes: sizes) }
        let report = TestbedReport(composition: ctx.composition.name, flavour: ctx.flavour.name, dryRun: ctx.options.dryRun,
                                   started: started, seconds: Date().timeIntervalSince(started), hosts: hosts,
                                   missing: dropped.map(\.1), sparesLeft: spares.map(\.description))
        try writeAtomically(try report.encoded(), to: ctx.reportFile)
    }
}
