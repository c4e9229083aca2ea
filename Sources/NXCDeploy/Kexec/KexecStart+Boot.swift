import Foundation
import NXCDeployment
import NXCTestbed
import NXCBuild

/// The last two phases on a host: kexec into the bundle, then wait for it to answer as its node.
extension KexecStart {
    /// The per-node network on the kernel command line, for fetching the document over HTTP.
    static func netParams(_ node: Deployment.Node?) -> String {
        var parts: [String] = []
        for i in node?.interfaces ?? [] where !i.addresses.isEmpty {
            parts.append("nxc.if=" + ([i.mac] + i.addresses).joined(separator: ","))
            for r in i.routes ?? [] { parts.append("nxc.route=\(r.to),\(r.via)") }
        }
        return parts.joined(separator: " ")
    }

    /// What the kernel command line carries besides the URL when the document comes over HTTP: the
    /// node's network to reach it, and the document's SHA-256, which the agent checks (plain HTTP).
    /// kexec.sh puts NXC_NET's words on the command line as they are.
    static func httpParams(_ node: Deployment.Node?, sha: String) -> String {
        [netParams(node), "nxc.deployment_sha256=\(sha)"].filter { !$0.isEmpty }.joined(separator: " ")
    }

    /// How long after kexec.sh the old system may still answer (kexec.sh jumps after a second).
    static let oldSystemGrace = 40.0

    /// The kexec phase (one session writes the document and runs kexec.sh; tried again only
    /// while the host still runs its old system), then the boot phase: until the host answers
    /// as its node, with a new boot ID, or the timeout passes.
    static func kexecAndWait(_ r: inout TestbedRun, env: TestbedSSH, doc: Deployment, pushDoc: String, url: String, root: String, sha: String,
                             timeout: Double, policy: RetryPolicy, progress: @Sendable (String) -> Void) {
        let host = r.entry.host
        let node = r.entry.node
        let dir = Self.remoteDirectory
        // One session (over the connection the check opened) writes the document and runs kexec.sh.
        var command: [String]
        var input: String?
        // nfs-store (`root`: nxc.root=URL): the initrd needs the node's address to mount the system.
        let extra = root.isEmpty ? "" : " " + root
        if url.isEmpty {
            command = asRoot + (root.isEmpty ? [] : ["env", "NXC_NET=\(netParams(doc.nodes[node]))\(extra)"])
                + ["sh", "-c", KexecScript.deployAndKexec, "sh", dir, node]
            input = pushDoc
        } else {
            command = asRoot + ["env", "NXC_DEPLOYMENT_URL=\(url)?node=\(node)", "NXC_NET=\(httpParams(doc.nodes[node], sha: sha))\(extra)",
                                "sh", dir + "/kexec.sh", node]
        }
        let oldBoot = r.facts["boot"] ?? ""
        let kexeced = r.phase(.kexec, policy: policy, progress: progress) { _, _ in
            do {
                let out = try Command.run(env.argv(host, afterKexec: false, command: command), timeout: 120, inputFile: input)
                progress("\(host): \(out.trimmingCharacters(in: .whitespacesAndNewlines))")
                return .ok
            } catch let e as CommandError where e.status == 255 || e.timedOut {
                // The session broke: kexec may be under way. Again only if the old system still runs.
                let probe = try? Command.status(env.argv(host, afterKexec: false, command: ["cat", "/proc/sys/kernel/random/boot_id"],
                                                         master: false), timeout: 20)
                if let (st, out) = probe, st == 0, out.trimmingCharacters(in: .whitespacesAndNewlines) == oldBoot {
                    return .retry("the session broke before kexec: \(e.output.split(separator: "\n").last.map(String.init) ?? "")", .kexec)
                }
                return .ok
            } catch {
                return .fail("kexec failed: \(error)", .kexec)
            }
        }
        guard kexeced else { progress("\(host): \(r.error ?? "")"); return }
        r.state = "kexec"
        r.phase(.boot, policy: RetryPolicy(retries: 0)) { r, _ in
            let kexeced = Date()
            let deadline = kexeced.addingTimeInterval(timeout)
            var last = "no answer yet"
            var asked = Date.distantPast
            while Date() < deadline {
                // kexec.sh jumps within seconds: the old system still answering long after means
                // the kexec never happened (kexec_load refused, a broken kexec): no use waiting.
                let since = Date().timeIntervalSince(kexeced)
                if since >= oldSystemGrace && Date().timeIntervalSince(asked) >= 10 {
                    asked = Date()
                    let argv = env.argv(host, afterKexec: false, command: ["cat", "/proc/sys/kernel/random/boot_id"], master: false)
                    if let (st, out) = try? Command.status(argv, timeout: 20), st == 0,
                       out.trimmingCharacters(in: .whitespacesAndNewlines) == oldBoot {
                        return .fail("still runs its old system \(Int(since)) s after kexec.sh: the kexec did not happen", .kexec)
                    }
                }
                let argv = env.argv(host, afterKexec: true,
                                    command: ["cat", "/etc/nxc/hostname", "/proc/sys/kernel/random/boot_id", "/run/nxc/ready"],
                                    probing: true)
                if let (st, out) = try? Command.status(argv, timeout: 20) {
                    let lines = out.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
                    if st == 0, lines.count >= 2, lines[0] == node, lines[1] != oldBoot {
                        // Forget the key of the system it was, learn the node's.
                        let known = host.port.map { "[\(host.name)]:\($0)" } ?? host.name
                        _ = try? Command.status(["ssh-keygen", "-R", known, "-f", env.postKnownHosts], timeout: 10)
                        _ = try? Command.status(env.argv(host, afterKexec: true, command: ["true"]), timeout: 20)
                        return .ok
                    }
                    if let l = lines.last { last = l }
                }
                Thread.sleep(forTimeInterval: 2)
            }
            return .fail("did not come back as \(node) within \(Int(timeout)) s (last: \(last))", .boot)
        }
        settleBoot(&r, progress: progress)
    }

    /// After a host's boot phase (kexec's, pxe's): up, or its error said.
    static func settleBoot(_ r: inout TestbedRun, progress: @Sendable (String) -> Void) {
        if r.failed {
            progress("\(r.entry.host): \(r.error ?? "")")
        } else {
            r.state = "up"
            progress("\(r.entry.node) is up on \(r.entry.host)")
        }
    }
}
