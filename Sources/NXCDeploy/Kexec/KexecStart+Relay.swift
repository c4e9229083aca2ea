import Foundation
import NXCDeployment
import NXCTestbed
import NXCBuild

/// The relay chain (RelayScript): hosts that lack the same bundle files receive them from each
/// other, fed once from this machine, instead of once each.
extension KexecStart {
    /// Below this, the files go over SSH to each host.
    static let relayMinimumBytes = 1 << 20
    /// Chains in a row: the hosts a dead relay cut short form a chain of their own, fed once more
    /// from here; what they still lack after the last round goes over SSH.
    static let relayRounds = 2

    /// Chains the checked hosts that lack the same files (two or more): listeners on all but the
    /// first, started at once; then this machine streams the tar of those files, with the chain's
    /// route, into the first host's SSH session; then each host of the chain is waited for and
    /// checked again (SHA-256 of what it staged). A host whose listener did not start is left out;
    /// one whose copy is short or wrong (a relay before it died) still lacks the files, and the
    /// SSH push that follows gives them to it.
    static func relay(_ runs: [TestbedRun], env: TestbedSSH, bundle: Bundle, timeout: Double, parallel: Int,
                      progress: @escaping @Sendable (String) -> Void) async -> (runs: [TestbedRun], fed: Int) {
        var runs = runs
        var fed = 0
        // The address each host's successor reaches it at: as the deployment document will say.
        let doc = Deployment.fromFacts(composition: "relay", flavour: "relay", key: "", runs: runs)
        let waiting = runs.indices.filter { !runs[$0].failed && runs[$0].state != "up" && !missing(runs[$0], bundle: bundle).isEmpty }
        let groups = Dictionary(grouping: waiting) { missing(runs[$0], bundle: bundle) }
        for (files, members) in groups.sorted(by: { $0.value.first ?? 0 < $1.value.first ?? 0 }) where members.count >= 2 && !files.contains(payloadFile) {
            guard let tar = try? bundle.archives.archive(of: files, from: bundle.build) else { continue }
            let bytes = (try? FileManager.default.attributesOfItem(atPath: tar)[.size] as? Int) ?? 0
            // (A payload segment alone is joined to the host's initrd by the push, never relayed.)
            // A chain costs an SSH session per host to set up and a hash of the files on each: worth
            // it for a kernel and an initrd, not for kexec.sh alone (pushed, as before).
            guard bytes >= relayMinimumBytes else { continue }
            // Long enough for the stream at 1 MB/s, bounded by the start's own timeout.
            let seconds = Int(min(timeout, 120 + Double(bytes) / 1_000_000))
            let token = randomHex(bytes: 32)
            progress("relay: \(files.joined(separator: ", ")) to \(members.count) host(s) in a chain, fed once from here")
            // Listeners on every host but the first, all at once: each needs only the token (the
            // rest of the chain comes with the stream).
            let listeners = await Parallel.map(Array(members.dropFirst()).map { ($0, runs[$0]) }, limit: parallel) { item -> (Int, String)? in
                let (i, r) = item
                let argv = env.argv(r.entry.host, afterKexec: false,
                                    command: asRoot + ["sh", "-c", RelayScript.listen, "sh", remoteDirectory, token, String(seconds), RelayScript.perl])
                guard let (st, out) = try? Command.status(argv, timeout: 60), st == 0,
                      let port = out.split(separator: "\n").first(where: { $0.hasPrefix("@port ") })?.dropFirst(6),
                      let address = doc.nodes[r.entry.node]?.address else {
                    progress("\(r.entry.host): relay did not start; it gets the bundle over SSH")
                    return nil
                }
                return (i, "\(address),\(port)")
            }
            let chained = listeners.compactMap { $0 }
            let head = members[0]
            var previous = head
            for (i, _) in chained {
                runs[i].relayedFrom = runs[previous].entry.host.description
                previous = i
            }
            let route = chained.isEmpty ? "-" : chained.map(\.1).joined(separator: " ")
            let headArgv = env.argv(runs[head].entry.host, afterKexec: false,
                                    command: asRoot + ["sh", "-c", RelayScript.head, "sh", remoteDirectory, token, route,
                                                       String(seconds), RelayScript.perl])
            let t0 = Date()
            fed += bytes
            do {
                try Command.run(headArgv, timeout: Double(seconds) + 30, inputFile: tar)
            } catch {
                progress("\(runs[head].entry.host): relay head failed: \(error)")
            }
            // Each host: once its relay has ended, hashed again. A chain runs at the pace of its head,
            // so a relay not done within as long again as the head took (30 s at least) is cut short
            // and its host pushed to over SSH.
            let remaining = max(30, Int(Date().timeIntervalSince(t0)))
            let chain = ([head] + chained.map(\.0)).map { ($0, runs[$0]) }
            let checked = await Parallel.map(chain, limit: parallel) { item -> (Int, TestbedRun) in
                var (i, r) = item
                let host = r.entry.host
                let wait = env.argv(host, afterKexec: false, command: asRoot + ["sh", "-c", RelayScript.wait, "sh", remoteDirectory,
                                                                               String(remaining)])
                if let (_, out) = try? Command.status(wait, timeout: Double(remaining) + 30) { r.record(facts: out) }
                recheck(&r, env: env, bundle: bundle, timeout: timeout)
                r.relayed = files.filter { r.remoteSHA[$0] == bundle.sha[$0] }
                if r.relayed.isEmpty { r.relayedFrom = nil }
                // A relay that fell short is not the host's failure: the push that follows is its next try.
                r.phases.append(PhaseRecord(phase: .transfer, started: t0, seconds: Date().timeIntervalSince(t0), attempts: 1,
                                            ok: r.relayed.count == files.count,
                                            error: r.relayed.count == files.count ? nil : "relay: \(files.count - r.relayed.count) file(s) short"))
                return (i, r)
            }
            for (i, r) in checked { runs[i] = r }
            let got = checked.filter { !$0.1.relayed.isEmpty }.count
            progress(String(format: "relay: %d of %d host(s) have it after %.1f s", got, members.count, Date().timeIntervalSince(t0)))
        }
        return (runs, fed)
    }

    /// `bytes` random bytes as hex, from the system's generator.
    static func randomHex(bytes: Int) -> String {
        var g = SystemRandomNumberGenerator()
        return (0..<bytes).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &g)) }.joined()
    }
}
