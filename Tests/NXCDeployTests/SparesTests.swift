import Foundation
import XCTest
import NXCTestSupport
@testable import NXCComposition
@testable import NXCDeploy
@testable import NXCDeployment
@testable import NXCTestbed
import NXCArchive
import NXCBuild
import NXCStore

/// Retries, spares, `min` and the start report (issue 14), without hosts: the phases' bookkeeping,
/// the spare pool and the role minimums are plain logic over `TestbedRun`s.
final class SparesTests: XCTestCase {
    func run(_ node: String, _ role: String, _ host: String) -> TestbedRun {
        TestbedRun(entry: .init(node: node, role: role, host: TestbedHost(name: host)))
    }

    func failed(_ r: TestbedRun, _ cls: TestbedErrorClass = .unreachable) -> TestbedRun {
        var r = r
        r.phase(.connect, policy: RetryPolicy(retries: 0)) { _, _ in .retry("no route", cls) }
        return r
    }

    func testBackoffDoublesUpToItsCap() {
        let p = RetryPolicy(retries: 5, base: 2, cap: 30)
        XCTAssertEqual((1...6).map { p.delay(after: $0) }, [2, 4, 8, 16, 30, 30])
    }

    func testPhaseTriesAgainOnlyWhatIsWorthIt() {
        let fast = RetryPolicy(retries: 2, base: 0.01, cap: 0.01)
        var r = run("a", "r", "h1")
        var tries = 0
        XCTAssertTrue(r.phase(.connect, policy: fast) { _, attempt in
            tries += 1
            return attempt < 3 ? .retry("refused", .unreachable) : .ok
        })
        XCTAssertEqual(tries, 3)
        XCTAssertEqual(r.phases.map(\.attempts), [3])
        XCTAssertNil(r.error)

        // Retries run out: failed, with the phase, the class and the last reason.
        var lines: [String] = []
        XCTAssertFalse(r.phase(.transfer, policy: fast, progress: { lines.append($0) }) { _, _ in .retry("short", .transfer) })
        XCTAssertEqual(r.phases.last, PhaseRecord(phase: .transfer, started: r.phases.last!.started, seconds: r.phases.last!.seconds,
                                                  attempts: 3, ok: false, error: "short"))
        XCTAssertEqual(r.errorClass, .transfer)
        XCTAssertEqual(r.failedPhase, .transfer)
        XCTAssertEqual(lines.count, 2, "one line per try again")
        XCTAssertTrue(lines[0].contains("h1: transfer: short; trying again in 0 s (2 of 3)"), lines[0])

        // A verdict is not tried again.
        var v = run("b", "r", "h2")
        tries = 0
        XCTAssertFalse(v.phase(.facts, policy: fast) { _, _ in tries += 1; return .fail("no kexec", .unsupported) })
        XCTAssertEqual(tries, 1)
        XCTAssertEqual(v.errorClass, .unsupported)
    }

    func testSparesTakeFailedNodesInFileOrderUntilNoneIsLeft() async {
        let runs = [run("server", "server", "h1"), failed(run("client1", "client", "h2")), failed(run("client2", "client", "h3"))]
        var spares = [TestbedHost(name: "s1"), TestbedHost(name: "s2"), TestbedHost(name: "s3")]
        var retired: [TestbedRun] = []
        let log = Lines()
        // s1 fails too: its node goes to the next spare.
        let out = await KexecStart.replaceFailed(runs, spares: &spares, retired: &retired, parallel: 4, progress: { log.add($0) }) { r in
            if r.entry.host.name == "s1" { r.phase(.connect, policy: RetryPolicy(retries: 0)) { _, _ in .retry("down", .unreachable) } }
            else { r.state = "checked" }
        }
        XCTAssertEqual(out.map(\.entry.node), ["server", "client1", "client2"], "the nodes keep their order")
        XCTAssertEqual(out.map(\.entry.host.name), ["h1", "s3", "s2"])
        XCTAssertEqual(out.map(\.replaces?.name), [nil, "s1", "h3"])
        XCTAssertTrue(out.allSatisfy { !$0.failed })
        XCTAssertEqual(retired.map(\.entry.host.name).sorted(), ["h2", "h3", "s1"])
        XCTAssertEqual(Dictionary(uniqueKeysWithValues: retired.map { ($0.entry.host.name, $0.replacedBy?.name ?? "") }),
                       ["h2": "s1", "h3": "s2", "s1": "s3"])
        XCTAssertTrue(spares.isEmpty)
        XCTAssertTrue(log.all.contains("s1: spare, takes client1 (role client) from h2, whose connect failed"), "\(log.all)")

        // No spare: the failed runs stay as they are.
        var none: [TestbedHost] = []
        let same = await KexecStart.replaceFailed(runs, spares: &none, retired: &retired, parallel: 4, progress: { _ in }) { _ in }
        XCTAssertEqual(same.map(\.entry.host.name), ["h1", "h2", "h3"])
    }

    func testMinKeepsARoleGoingWithoutItsFailedNodes() {
        let runs = [run("server", "server", "h1"), run("client1", "client", "h2"), failed(run("client2", "client", "h3")),
                    failed(run("db", "db", "h4"))]
        let (kept, dropped) = KexecStart.settle(runs, minimum: ["server": 1, "client": 1, "db": 1])
        XCTAssertEqual(kept.map(\.entry.node), ["server", "client1", "db"], "db has no node left above its min: it fails the start")
        XCTAssertEqual(dropped.map(\.1), [TestbedReport.Missing(node: "client2", role: "client", running: 1, minimum: 1)])
        // Without a min every node is needed.
        XCTAssertEqual(KexecStart.settle(runs, minimum: [:]).kept.count, 4)
    }

    func testMinFromTheCompositionAndFromR() throws {
        let dir = NSTemporaryDirectory() + "nxc-min-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = dir + "/composition.yaml"
        try Data("name: m\nroles:\n  server:\n  client:\n    count: 3\n    min: 2\n".utf8).write(to: URL(fileURLWithPath: file))
        let c = try Composition.load(path: file)
        XCTAssertEqual(c.role(named: "client")?.minimum, 2)
        let hosts = (1...6).map { TestbedHost(name: "h\($0)") }
        XCTAssertEqual(try RoleDistribution.bind(c, overrides: [], hosts: hosts, source: "m").minimum, ["server": 1, "client": 2])
        let b = try RoleDistribution.bind(c, overrides: ["client=4,min=1"], hosts: hosts, source: "m")
        XCTAssertEqual(b.entries.count, 5)
        XCTAssertEqual(b.minimum["client"], 1)
        XCTAssertEqual(b.unused.map(\.name), ["h6"], "the host beyond the nodes is a spare")
        XCTAssertEqual(try RoleDistribution.bind(c, overrides: ["client=min=3"], hosts: hosts, source: "m").minimum["client"], 3)
        let named = try RoleDistribution.bind(c, overrides: ["client=h5,h6,min=1"], hosts: hosts, source: "m")
        XCTAssertEqual(named.entries.filter { $0.role == "client" }.map(\.host.name), ["h5", "h6"])
        XCTAssertEqual(named.minimum["client"], 1)
        for (o, why) in [("client=2,min=3", "min 3 is more than the role's 2 node(s)"), ("client=2,min=x", "'min=x': min takes a node count"),
                         ("client=2,min=1,min=1", "min is given twice")] {
            XCTAssertThrowsError(try RoleDistribution.bind(c, overrides: [o], hosts: hosts, source: "m"), o) { e in
                XCTAssertTrue("\(e)".contains(why), "\(o): \(e)")
            }
        }
    }

    func testHardwareThatDiffersWithinARoleIsNamed() {
        func host(_ node: String, _ mem: Int, _ nic: String) -> TestbedRun {
            var r = run(node, "worker", node + ".site")
            r.record(facts: "@arch x86_64\n@mem \(mem)\n@cpu Xeon Gold 5220 x36\n@nic \(nic)\n@kernel 6.1.0-18-amd64\n")
            return r
        }
        let warnings = KexecStart.hardwareWarnings([host("w1", 97_000_000, "ixgbe"), host("w2", 97_100_000, "ixgbe"),
                                                    host("w3", 48_000_000, "ixgbe"), host("w4", 97_000_000, "mlx5_core")])
        XCTAssertEqual(warnings, ["w4.site (w4): NIC drivers 'mlx5_core', other hosts of role worker: 'ixgbe'",
                                  "w3.site (w3): RAM 46875 MiB, other hosts of role worker: 94726 MiB"])
    }

    func testReportSaysWhereEachHostGotItsBytes() throws {
        var relayed = run("client1", "client", "h2")
        relayed.relayed = ["kernel", "initrd"]
        relayed.relayedFrom = "h1"
        relayed.record(facts: "@arch x86_64\n")
        var pushed = run("server", "server", "h1")
        pushed.pushed = ["kexec.sh"]
        pushed.relayed = ["kernel", "initrd"]
        let sizes = ["kernel": 8_000_000, "initrd": 80_000_000, "kexec.sh": 2_000]
        let a = TestbedReport.host(relayed, sizes: sizes)
        XCTAssertEqual(a.bytesReceived, 88_000_000)
        XCTAssertEqual(a.receivedFrom, "relay from h1")
        XCTAssertEqual(TestbedReport.host(pushed, sizes: sizes).bytesReceived, 88_002_000)
        XCTAssertEqual(TestbedReport.host(pushed, sizes: sizes).receivedFrom, "ssh")
        var gone = failed(run("client2", "client", "h3"))
        gone.phases[0].started = Date(timeIntervalSince1970: 1_800_000_001)  // ISO 8601 keeps whole seconds
        gone.replacedBy = TestbedHost(name: "s1")
        let g = TestbedReport.host(gone, sizes: sizes)
        XCTAssertEqual([g.state, g.receivedFrom, g.errorClass?.rawValue, g.replacedBy], ["replaced", "none", "unreachable", "s1"])

        let report = TestbedReport(composition: "c", flavour: "g5k-ramdisk", dryRun: true, started: Date(timeIntervalSince1970: 1_800_000_000),
                                   seconds: 12.5, hosts: [a, g], missing: [.init(node: "client2", role: "client", running: 1, minimum: 1)],
                                   sparesLeft: ["s2"])
        let path = NSTemporaryDirectory() + "nxc-report-\(UUID().uuidString.prefix(8)).json"
        defer { unlink(path) }
        try report.encoded().write(to: URL(fileURLWithPath: path))
        XCTAssertEqual(try TestbedReport.load(path: path), report)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        XCTAssertTrue(text.contains("\"started\" : \"2027-01-15T08:00:00Z\""), text)
        XCTAssertThrowsError(try TestbedReport.load(path: path + ".none"))
    }

    /// The RAM a host needs counts the initrd decompressed, every frame of it.
    func testMemoryNeededCountsTheUnpackedSystem() throws {
        let dir = NSTemporaryDirectory() + "nxc-mem-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let big = Data(repeating: 7, count: 3_000_000)
        try big.write(to: URL(fileURLWithPath: dir + "/a"))
        try Data("kernel".utf8).write(to: URL(fileURLWithPath: dir + "/kernel"))
        // Two zstd frames, as the initrd's system and payload segments.
        try Command.run(["sh", "-c", "zstd -q -c \"$0/a\" > \"$0/initrd\" && zstd -q -c \"$0/kernel\" >> \"$0/initrd\"", dir])
        XCTAssertEqual(try ArchiveReader.decompressedSize(path: dir + "/initrd"), 3_000_006)
        let need = try XCTUnwrap(KexecStart.memoryNeeded(build: dir))
        let packed = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: dir + "/initrd")[.size] as? Int)
        XCTAssertEqual(need.bytes, 3_000_006 + packed + 6 + KexecStart.runningMargin)
        XCTAssertTrue(need.why.hasPrefix("system unpacked 2 MiB"), need.why)
    }
}

/// `nxc cp`'s arguments: which side is on the nodes.
final class ResultsTests: XCTestCase {
    func testRemoteSideIsANodeOrARoleOfTheDeployment() {
        var d = Deployment(composition: "c", flavour: "f", authorizedKeys: [], nodes: [:], order: ["server", "client1"])
        d.nodes["server"] = .init(role: "server", address: nil, interfaces: nil, ssh: nil)
        d.nodes["client1"] = .init(role: "client", address: nil, interfaces: nil, ssh: nil)
        XCTAssertEqual(Results.remote("server:/etc/hosts", in: d), .init(target: "server", path: "/etc/hosts"))
        XCTAssertEqual(Results.remote("client:/var/log", in: d), .init(target: "client", path: "/var/log"))
        XCTAssertEqual(Results.remote("client1:rel", in: d), .init(target: "client1", path: "rel"))
        XCTAssertNil(Results.remote("./server:/etc", in: d))
        XCTAssertNil(Results.remote("other:/etc", in: d))
        XCTAssertNil(Results.remote("/tmp/a", in: d))
    }
}

/// A host that holds the initrd's system segment (a node started with --reuse, a host with an
/// earlier bundle) is sent the payload segment alone, and joins it to that segment.
final class PayloadOnlyTests: XCTestCase {
    func testHostWithTheSystemSegmentGetsThePayloadAlone() throws {
        let fm = FileManager.default
        let work = NSTemporaryDirectory() + "nxc-payload-\(UUID().uuidString.prefix(8))"
        defer { try? fm.removeItem(atPath: work) }
        let build = work + "/build", remote = work + "/remote"
        try fm.createDirectory(atPath: build, withIntermediateDirectories: true)
        try fm.createDirectory(atPath: remote, withIntermediateDirectories: true)
        var g = SystemRandomNumberGenerator()
        let system = Data((0..<300_000).map { _ in UInt8.random(in: 0...255, using: &g) })
        let payload = Data("new payload".utf8), old = Data("the old payload, longer".utf8)
        try (system + payload).write(to: URL(fileURLWithPath: build + "/initrd"))
        try payload.write(to: URL(fileURLWithPath: build + "/initrd.payload"))
        try Data("K".utf8).write(to: URL(fileURLWithPath: build + "/kernel"))
        try Data("#!/bin/sh\n".utf8).write(to: URL(fileURLWithPath: build + "/kexec.sh"))
        try (system + old).write(to: URL(fileURLWithPath: remote + "/initrd"))

        let prefix = try XCTUnwrap(try KexecStart.systemSegment(build: build))
        XCTAssertEqual(prefix.size, system.count)
        XCTAssertEqual(prefix.sha, sha256(bytes: Array(system)))
        var bundle = KexecStart.Bundle(build: build, sha: [:], sizes: [], archives: KexecStart.PushArchives(folder: work))
        for f in KexecStart.bundleFiles {
            bundle.sha[f] = try sha256(file: build + "/" + f)
            bundle.sizes.append(String(try XCTUnwrap(fm.attributesOfItem(atPath: build + "/" + f)[.size] as? Int)))
        }
        bundle.prefix = prefix
        XCTAssertEqual(bundle.fileSizes[KexecStart.payloadFile], payload.count)

        let out = try Command.run(["sh", "-c", KexecScript.check, "sh", remote, ""] + bundle.checkArguments, timeout: 30)
        var r = TestbedRun(entry: .init(node: "n", role: "r", host: TestbedHost(name: "h")))
        r.record(facts: out)
        XCTAssertEqual(r.facts["prefix"], prefix.sha, out)
        XCTAssertEqual(KexecStart.missing(r, bundle: bundle), ["kernel", "initrd.payload", "kexec.sh"])

        let tar = try bundle.archives.archive(of: ["initrd.payload"], from: build)
        let joined = try Command.run(["sh", "-c", KexecScript.receive + "\n" + KexecScript.join, "sh", remote, String(prefix.size)],
                                     timeout: 30, inputFile: tar)
        XCTAssertTrue(joined.contains("@sha initrd \(try XCTUnwrap(bundle.sha["initrd"]))"), joined)
        XCTAssertEqual(try sha256(file: remote + "/initrd"), bundle.sha["initrd"])
        XCTAssertFalse(fm.fileExists(atPath: remote + "/initrd.payload"))
        XCTAssertFalse(fm.fileExists(atPath: remote + "/.initrd.join"))

        // Another system segment there: the whole initrd is missing.
        try (Data(repeating: 1, count: system.count) + old).write(to: URL(fileURLWithPath: remote + "/initrd"))
        var other = TestbedRun(entry: .init(node: "n", role: "r", host: TestbedHost(name: "h")))
        other.record(facts: try Command.run(["sh", "-c", KexecScript.check, "sh", remote, ""] + bundle.checkArguments, timeout: 30))
        XCTAssertEqual(KexecStart.missing(other, bundle: bundle), ["kernel", "initrd", "kexec.sh"])
        bundle.archives.removeAll()
    }
}
