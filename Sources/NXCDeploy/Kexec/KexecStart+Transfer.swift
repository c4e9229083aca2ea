import Foundation
import NXCDeployment
import NXCTestbed
import NXCBuild

/// The bundle's last leg to a host: what it still lacks after the shared folder and the relay
/// chain goes over SSH, tried again on failure.
extension KexecStart {
    /// One SSH session unpacks a tar of what the host still lacks (nothing when it lacks nothing),
    /// then says where the host's bundle came from.
    static func push(_ r: inout TestbedRun, env: TestbedSSH, bundle: Bundle, timeout: Double, policy: RetryPolicy,
                     progress: @Sendable (String) -> Void) {
        let host = r.entry.host
        if !Self.missing(r, bundle: bundle).isEmpty {
            if r.facts["tar"] == "none" {
                r.phase(.transfer, policy: policy) { _, _ in .fail("tar is not installed", .transfer) }
                return
            }
            var sent: [String] = []
            let ok = r.phase(.transfer, policy: policy, progress: progress) { r, _ in
                // Again at each try: a payload that did not join into the right initrd sends the whole next.
                let missing = Self.missing(r, bundle: bundle)
                do {
                    let tar = try bundle.archives.archive(of: missing, from: bundle.build)
                    var script = KexecScript.receive
                    var args = [remoteDirectory]
                    let joining = missing.contains(payloadFile)
                    if joining, let p = bundle.prefix {
                        script += "\n" + KexecScript.join
                        args.append(String(p.size))
                    }
                    let argv = env.argv(host, afterKexec: false, command: asRoot + ["sh", "-c", script, "sh"] + args)
                    let out = try Command.run(argv, timeout: timeout, inputFile: tar)
                    if joining {
                        r.record(facts: out)
                        guard r.remoteSHA["initrd"] == bundle.sha["initrd"] else {
                            r.facts["prefix"] = nil
                            return .retry("the initrd joined from its payload segment differs from this one's", .transfer)
                        }
                    }
                    sent = missing
                    return .ok
                } catch {
                    return .retry("push of \(missing.joined(separator: ", ")) failed: \(error)", .transfer)
                }
            }
            guard ok else { progress("\(host): \(r.error ?? "")"); return }
            r.pushed = sent
        }
        // The node's own kernel and initrd (--reuse), unless they were replaced by other means.
        let replaced = Set(r.pushed + r.relayed + r.fromShared)
        let own = r.facts["bundle"] == "node" && !replaced.contains("kernel") && !replaced.contains("initrd")
        let copied = r.fromShared.filter { !r.pushed.contains($0) }
        let kept = own ? "kernel and initrd from the node itself" : !copied.isEmpty ? "copied from the shared folder"
            : !r.relayed.isEmpty ? "\(r.relayed.joined(separator: ", ")) through the relay chain" : "bundle already there"
        var notes: [String] = []
        if own && !copied.isEmpty { notes.append("\(copied.joined(separator: ", ")) copied from the shared folder") }
        if (own || !copied.isEmpty) && !r.relayed.isEmpty { notes.append("\(r.relayed.joined(separator: ", ")) through the relay chain") }
        let differed = r.fromShared.filter { r.pushed.contains($0) }
        if !differed.isEmpty { notes.append("the shared folder's \(differed.joined(separator: ", ")) differed") }
        if !r.sharedUnreadable.isEmpty { notes.append("the shared folder's \(r.sharedUnreadable.joined(separator: ", ")) unreadable as root") }
        let payloadOnly = r.pushed.contains(payloadFile)
        if payloadOnly {
            notes.append((own ? "kernel and the initrd's system segment from the node itself" : "the initrd's system segment already there")
                         + ", the new payload segment joined to it")
        }
        r.state = (r.pushed.isEmpty ? "checked (\(kept))" : "pushed \(r.pushed.joined(separator: ", ")) over SSH"
                   + (own && !payloadOnly ? " (\(kept))" : ""))
            + (notes.isEmpty ? "" : "; " + notes.joined(separator: "; "))
        progress("\(host): \(r.state)")
    }
}
