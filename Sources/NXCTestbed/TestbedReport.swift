import Foundation
import NXCDeployment

/// `deploy/<composition>.<flavour>.report.json`: what happened to each reserved host of the last
/// start: its phases with timestamps and tries, the bytes it received and from where, and why it
/// failed. Written at the end of every start on reserved hosts, dry runs and failed ones included.
public struct TestbedReport: Sendable, Codable, Equatable {
    public struct Host: Sendable, Codable, Equatable {
        public var host: String
        public var node: String
        public var role: String
        /// up, ready (dry run), failed, replaced (a spare took its node), missing (dropped: the role kept its min).
        public var state: String
        public var phases: [PhaseRecord]
        public var bytesReceived: Int
        /// relay (from HOST), shared folder, ssh, already there, node (its own kernel and initrd), or none.
        public var receivedFrom: String
        public var errorClass: TestbedErrorClass?
        public var error: String?
        public var replaces: String?
        public var replacedBy: String?
    }
    public struct Missing: Sendable, Codable, Equatable {
        public var node: String
        public var role: String
        /// The role's nodes that run, and the fewest it may run with.
        public var running: Int
        public var minimum: Int

        public init(node: String, role: String, running: Int, minimum: Int) {
            self.node = node
            self.role = role
            self.running = running
            self.minimum = minimum
        }
    }

    public var composition: String
    public var flavour: String
    public var dryRun: Bool
    public var started: Date
    public var seconds: Double
    public var hosts: [Host]
    /// Nodes the deployment runs without (their hosts failed, no spare was left, the role kept its min).
    public var missing: [Missing]
    /// Spares of the machine file that no failed host needed.
    public var sparesLeft: [String]

    public init(composition: String, flavour: String, dryRun: Bool, started: Date, seconds: Double,
                hosts: [Host], missing: [Missing], sparesLeft: [String]) {
        self.composition = composition
        self.flavour = flavour
        self.dryRun = dryRun
        self.started = started
        self.seconds = seconds
        self.hosts = hosts
        self.missing = missing
        self.sparesLeft = sparesLeft
    }

    /// A host's line: `sizes` gives each bundle file's size, to count what it received.
    public static func host(_ r: TestbedRun, sizes: [String: Int]) -> Host {
        let received = Set(r.pushed + r.relayed + r.fromShared)
        let from: String
        if !r.pushed.isEmpty { from = "ssh" }
        else if !r.relayed.isEmpty { from = "relay" + (r.relayedFrom.map { " from \($0)" } ?? " (head, fed from here)") }
        else if !r.fromShared.isEmpty { from = "shared folder" }
        else if r.facts["bundle"] == "node" { from = "node" }
        else if r.facts["arch"] != nil { from = "already there" }
        else { from = "none" }
        let state: String
        if r.replacedBy != nil { state = "replaced" }
        else if r.failed { state = "failed" }
        else if r.state == "up" { state = "up" }
        else if r.state.hasPrefix("ready") { state = "ready" }
        else { state = r.state }
        return Host(host: r.entry.host.description, node: r.entry.node, role: r.entry.role, state: state, phases: r.phases,
                    bytesReceived: received.reduce(0) { $0 + (sizes[$1] ?? 0) }, receivedFrom: from,
                    errorClass: r.errorClass, error: r.error, replaces: r.replaces?.description,
                    replacedBy: r.replacedBy?.description)
    }

    public func encoded() throws -> Data {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        enc.dateEncodingStrategy = .iso8601
        return try enc.encode(self)
    }

    public static func load(path: String) throws -> TestbedReport {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DeployError.badInput(path, problem: "cannot read the report")
        }
        let dec = JSONDecoder()
        dec.dateDecodingStrategy = .iso8601
        do { return try dec.decode(TestbedReport.self, from: data) } catch {
            throw DeployError.badInput(path, problem: "not a start report: \(error)")
        }
    }
}
