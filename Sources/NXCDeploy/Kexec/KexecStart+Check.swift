import Foundation
import NXCDeployment
import NXCTestbed
import NXCArchive
import NXCBuild
import NXCFlavours

/// Before anything changes on a host: one SSH session gathers its facts (and hashes the bundle
/// files already there), and the host is refused, by name, when it cannot become a node.
extension KexecStart {
    /// What a node needs in RAM beyond the unpacked system, the initrd the agent keeps (for
    /// `--reuse`) and the kernel: its services and page cache.
    static let runningMargin = 256 << 20

    /// The RAM a host needs to run the bundle's system: its initrd unpacked (decompressed, as the
    /// kernel unpacks it into memory), the initrd itself (kept by the agent), the kernel, and the
    /// running margin. nil when the initrd cannot be read as a compressed stream.
    static func memoryNeeded(build: String) -> (bytes: Int, why: String)? {
        let initrd = build + "/initrd"
        guard let unpacked = try? ArchiveReader.decompressedSize(path: initrd),
              let packed = (try? FileManager.default.attributesOfItem(atPath: initrd)[.size]) as? Int,
              let kernel = (try? FileManager.default.attributesOfItem(atPath: build + "/kernel")[.size]) as? Int else { return nil }
        let total = unpacked + packed + kernel + runningMargin
        return (total, "system unpacked \(mib(unpacked)), initrd \(mib(packed)), kernel \(mib(kernel)), \(mib(runningMargin)) to run")
    }

    static func mib(_ bytes: Int) -> String { "\(bytes >> 20) MiB" }

    /// Connect (tried again while SSH cannot reach the host), then the facts: the check's verdict
    /// (root, the bundle folder), the architecture, kexec, and enough RAM. Copies from the shared
    /// folder happen in the check's session.
    static func check(_ r: inout TestbedRun, env: TestbedSSH, bundle: Bundle, timeout: Double, policy: RetryPolicy,
                      progress: @Sendable (String) -> Void) {
        let host = r.entry.host
        let argv = env.argv(host, afterKexec: false,
                            command: asRoot + ["sh", "-c", KexecScript.check, "sh", remoteDirectory, bundle.shared] + bundle.checkArguments)
        var answer: (Int32, String)?
        let connected = r.phase(.connect, policy: policy, progress: progress) { _, _ in
            let checked = try? Command.status(argv, timeout: max(60, timeout))
            // ssh exits 255 on its own failures; anything else is the check's verdict.
            if let (st, out) = checked, st != 255 { answer = (st, out); return .ok }
            let why = checked.flatMap { $0.1.split(whereSeparator: \.isNewline).last?.trimmingCharacters(in: .whitespaces) }
                ?? "no answer within \(Int(max(60, timeout))) s"
            return .retry("unreachable over SSH: \(why)", .unreachable)
        }
        guard connected, let (st, out) = answer else { progress("\(host): \(r.error ?? "")"); return }
        r.phase(.facts, policy: RetryPolicy(retries: 0)) { r, _ in
            guard st == 0 else {
                return .fail("check failed (exit \(st)): \(out.split(separator: "\n").last.map(String.init) ?? "no output")", .refused)
            }
            r.record(facts: out)
            if r.facts["arch"] != "x86_64" { return .fail("architecture \(r.facts["arch"] ?? "?"), the bundle is for x86_64", .unsupported) }
            if r.facts["kexec"] == "none" { return .fail("kexec is not installed (apt-get install kexec-tools)", .unsupported) }
            if let need = bundle.memory, let kb = Int(r.facts["mem"] ?? ""), kb * 1024 < need.bytes {
                return .fail("RAM: the host has \(mib(kb * 1024)), the node needs \(mib(need.bytes)) (\(need.why))", .memory)
            }
            return .ok
        }
        if r.failed { progress("\(host): \(r.error ?? "")") } else { r.state = "checked" }
    }

    /// The check once more, for what the host now holds (after the relay, or for another bundle):
    /// its hashes only; `shared`: copying first what the shared folder has.
    static func recheck(_ r: inout TestbedRun, env: TestbedSSH, bundle: Bundle, timeout: Double, shared: Bool = false) {
        let argv = env.argv(r.entry.host, afterKexec: false,
                            command: asRoot + ["sh", "-c", KexecScript.check, "sh", remoteDirectory, shared ? bundle.shared : ""]
                                + bundle.checkArguments)
        if let (st, out) = try? Command.status(argv, timeout: max(60, timeout)), st == 0 { r.record(facts: out) }
    }

    /// Hosts of one role that differ from the others of that role in CPU, RAM (by more than 5%), NIC
    /// drivers or kernel: a warning each, not a refusal (a testbed cluster is often mixed on purpose).
    static func hardwareWarnings(_ runs: [TestbedRun]) -> [String] {
        var out: [String] = []
        let checked = runs.filter { !$0.failed && $0.facts["arch"] != nil }
        for role in Set(checked.map(\.entry.role)).sorted() {
            let members = checked.filter { $0.entry.role == role }
            guard members.count >= 2 else { continue }
            for (key, label) in [("cpu", "CPU"), ("nic", "NIC drivers"), ("kernel", "kernel")] {
                let values = members.map { $0.facts[key] ?? "" }
                guard let common = mostCommon(values) else { continue }
                for m in members where (m.facts[key] ?? "") != common {
                    // What a host says of itself is shown, not obeyed: control characters escaped.
                    out.append("\(m.entry.host) (\(m.entry.node)): \(label) '\(FlavourRules.printable(m.facts[key] ?? ""))', "
                               + "other hosts of role \(role): '\(FlavourRules.printable(common))'")
                }
            }
            let mems = members.map { Int($0.facts["mem"] ?? "") ?? 0 }
            let median = mems.sorted()[mems.count / 2]
            for (m, kb) in zip(members, mems) where median > 0 && abs(kb - median) * 20 > median {
                out.append("\(m.entry.host) (\(m.entry.node)): RAM \(mib(kb * 1024)), other hosts of role \(role): \(mib(median * 1024))")
            }
        }
        return out
    }

    private static func mostCommon(_ values: [String]) -> String? {
        let counts = Dictionary(values.map { ($0, 1) }, uniquingKeysWith: +)
        return counts.max { $0.value < $1.value || ($0.value == $1.value && $0.key > $1.key) }?.key
    }
}
