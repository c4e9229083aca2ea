import Foundation
import NXCDeployment
import NXCTestbed
import NXCBuild

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
            if r.failed && ok >= least && least < members.count {
                dropped.append((r, TestbedReport.Missing(node: r.entry.node, role: role, running: ok, minimum: least)))
            } else {
                kept.append(r)
            }
        }
        return (kept, dropped)
    }

    /// The report of a start: every host bound, replaced or dropped, and the spares left.
    static func report(_ ctx: StartContext, runs: [TestbedRun], retired: [TestbedRun],
                       dropped: [(TestbedRun, TestbedReport.Missing)], spares: [TestbedHost], bundle: Bundle, started: Date) throws {
        let sizes = Dictionary(uniqueKeysWithValues: zip(bundleFiles, bundle.sizes.map { Int($0) ?? 0 }))
        let hosts = (runs + dropped.map(\.0) + retired).map { TestbedReport.host($0, sizes: sizes) }
        let report = TestbedReport(composition: ctx.composition.name, flavour: ctx.flavour.name, dryRun: ctx.options.dryRun,
                                   started: started, seconds: Date().timeIntervalSince(started), hosts: hosts,
                                   missing: dropped.map(\.1), sparesLeft: spares.map(\.description))
        try writeAtomically(try report.encoded(), to: ctx.reportFile)
    }
}
