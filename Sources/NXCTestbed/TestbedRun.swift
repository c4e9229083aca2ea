import Foundation
import NXCDeployment
import NXCBuild

/// One reserved host during a start, whatever the method (kexec, Kadeploy): the node it becomes,
/// what it reported about itself, and what happened to it.
public struct TestbedRun: Sendable {
    public var entry: HostBinding.Entry
    public var state = "pending"
    public var error: String?
    public var seconds = 0.0
    /// `@KEY VALUE` lines a host printed about itself (arch, addr, route, boot, …).
    public var facts: [String: String] = [:]
    /// SHA-256 of staged files the host already has (`@sha NAME SHA`), by name.
    public var remoteSHA: [String: String] = [:]
    public var pushed: [String] = []
    /// Files the host copied from the shared folder (`@from NAME shared`), and those it could not read there.
    public var fromShared: [String] = []
    public var sharedUnreadable: [String] = []
    /// Files the host received through the relay chain (and checked), and the host it had them from.
    public var relayed: [String] = []
    public var relayedFrom: String?
    /// Each phase it went through (TestbedRun+Phases), and why it failed, as a class.
    public var phases: [PhaseRecord] = []
    public var errorClass: TestbedErrorClass?
    /// The host whose node this spare took over, and the spare that took this host's node.
    public var replaces: TestbedHost?
    public var replacedBy: TestbedHost?
    public var failed: Bool { error != nil }

    public init(entry: HostBinding.Entry) { self.entry = entry }

    /// Records the `@KEY VALUE` lines of a host's output (other lines are left alone).
    public mutating func record(facts output: String) {
        for line in output.split(separator: "\n") where line.hasPrefix("@") {
            let parts = line.dropFirst().split(separator: " ", maxSplits: 1).map(String.init)
            guard let key = parts.first else { continue }
            let value = parts.count > 1 ? parts[1] : ""
            if key == "sha" {
                let kv = value.split(separator: " ")
                if kv.count == 2 { remoteSHA[String(kv[0])] = String(kv[1]) }
            } else if key == "from" {
                let kv = value.split(separator: " ").map(String.init)
                if kv.count == 2, kv[1] == "shared" { fromShared.append(kv[0]) }
                if kv.count == 2, kv[1] == "unreadable" { sharedUnreadable.append(kv[0]) }
            } else {
                facts[key] = value
            }
        }
    }

    /// The per-host table at the end of a start, and the count of hosts up (or ready, for a dry run).
    public static func report(_ runs: [TestbedRun], progress: (String) -> Void, total: Double) {
        let rows = [["HOST", "NODE", "ROLE", "STATE", "SECONDS", "ERROR"]] + runs.map {
            [$0.entry.host.description, $0.entry.node, $0.entry.role, $0.state, String(format: "%.0f", $0.seconds), $0.error ?? ""]
        }
        for line in Table.render(rows) { progress(line) }
        let ok = runs.filter { !$0.failed }.count
        progress(String(format: "%d of %d host(s) %@ in %.0f s", ok, runs.count, runs.contains { $0.state == "up" } ? "up" : "ready", total))
    }
}
