import Foundation
import XCTest
import NXCBuild
import NXCStore
@testable import NXCDeployment
import NXCTestbed
@testable import NXCDeploy

/// The relay chain's scripts, run here as three "hosts" (three staging folders, listeners on
/// 127.0.0.1): the stream fed once into the first reaches all three; a relay whose next host is
/// gone keeps its own copy, and the host after it ends with nothing staged and a failed status.
final class RelayTests: XCTestCase {
    var work = ""
    let fm = FileManager.default

    override func setUpWithError() throws {
        try XCTSkipIf(Command.which("perl") == nil, "no perl")
        work = NSTemporaryDirectory() + "nxc-relay-\(UUID().uuidString.prefix(8))"
        try fm.createDirectory(atPath: work + "/build", withIntermediateDirectories: true)
        try Data(String(repeating: "initrd bytes ", count: 400_000).utf8).write(to: URL(fileURLWithPath: work + "/build/initrd"))
        try Data("#!/bin/sh\n".utf8).write(to: URL(fileURLWithPath: work + "/build/kexec.sh"))
    }

    override func tearDown() { try? fm.removeItem(atPath: work) }

    /// Starts a listener for host folder `dir`; its port.
    func listen(_ dir: String, token: String, seconds: Int = 60) throws -> String {
        let out = try Command.run(["sh", "-c", RelayScript.listen, "sh", dir, token, String(seconds), RelayScript.perl], timeout: 30)
        let port = try XCTUnwrap(out.split(separator: "\n").first { $0.hasPrefix("@port ") }?.dropFirst(6), out)
        return String(port)
    }

    func status(_ dir: String, wait: Int) throws -> String {
        try Command.run(["sh", "-c", RelayScript.wait, "sh", dir, String(wait)], timeout: Double(wait) + 10)
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func testChainOfThreeFedOnce() throws {
        let archives = KexecStart.PushArchives(folder: work)
        let tar = try archives.archive(of: ["initrd", "kexec.sh"], from: work + "/build")
        let token = KexecStart.randomHex(bytes: 32)
        let hosts = (1...3).map { "\(work)/host\($0)/bundle" }
        for h in hosts { try fm.createDirectory(atPath: (h as NSString).deletingLastPathComponent, withIntermediateDirectories: true) }
        // Listeners know nothing of the chain: the route comes with the stream.
        let p3 = try listen(hosts[2], token: token)
        let p2 = try listen(hosts[1], token: token)
        // A stranger that connects first without the token is dropped; the chain goes on.
        XCTAssertEqual(try Command.status(["sh", "-c", "echo wrong | nc -q 1 127.0.0.1 \"$0\"", p2], timeout: 10).0, 0)
        try Command.run(["sh", "-c", RelayScript.head, "sh", hosts[0], token, "127.0.0.1,\(p2) 127.0.0.1,\(p3)", "60", RelayScript.perl],
                        timeout: 60, inputFile: tar)
        for h in hosts {
            XCTAssertEqual(try status(h, wait: 20), "@relay ok", h)
            XCTAssertEqual(try sha256(file: h + "/initrd"), try sha256(file: work + "/build/initrd"), h)
            XCTAssertTrue(fm.isExecutableFile(atPath: h + "/kexec.sh"), h)
            XCTAssertFalse(fm.fileExists(atPath: h + "/.relay.in"), h)
        }
        archives.removeAll()
    }

    func testLostSuccessorCostsOnlyWhatFollows() throws {
        let archives = KexecStart.PushArchives(folder: work)
        let tar = try archives.archive(of: ["initrd"], from: work + "/build")
        let token = KexecStart.randomHex(bytes: 32)
        let hosts = (1...3).map { "\(work)/host\($0)/bundle" }
        for h in hosts { try fm.createDirectory(atPath: (h as NSString).deletingLastPathComponent, withIntermediateDirectories: true) }
        // Host 3 listens, but the route sends host 2 to a port where nothing listens: host 3 is never fed.
        _ = try listen(hosts[2], token: token, seconds: 60)
        let dead = String(try Processes.freePort())
        let p2 = try listen(hosts[1], token: token)
        try Command.run(["sh", "-c", RelayScript.head, "sh", hosts[0], token, "127.0.0.1,\(p2) 127.0.0.1,\(dead)", "60", RelayScript.perl],
                        timeout: 60, inputFile: tar)
        XCTAssertEqual(try status(hosts[0], wait: 20), "@relay ok")
        XCTAssertEqual(try status(hosts[1], wait: 20), "@relay ok")
        XCTAssertEqual(try sha256(file: hosts[1] + "/initrd"), try sha256(file: work + "/build/initrd"))
        // Its wait gives up and stops the relay still listening (by its process group, checked).
        XCTAssertEqual(try status(hosts[2], wait: 2), "@relay failed (stopped after 2 s)")
        XCTAssertFalse(fm.fileExists(atPath: hosts[2] + "/initrd"))
        let pid = try String(contentsOfFile: hosts[2] + "/.relay.pid", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let deadline = Date().addingTimeInterval(10)
        while kill(pid_t(pid) ?? 0, 0) == 0, Date() < deadline { usleep(100_000) }
        XCTAssertNotEqual(kill(pid_t(pid) ?? 0, 0), 0, "the relay of host 3 is gone")
        archives.removeAll()
    }
}

/// What the line after the checks says: each host counted once, and what this machine sent.
final class DistributionSummaryTests: XCTestCase {
    func testEachHostOnceAndTheBytesSent() throws {
        let sizes = ["1048576", "10485760", "1024"]
        let bundle = KexecStart.Bundle(build: "/b", sha: [:], sizes: sizes, archives: KexecStart.PushArchives(folder: "/nonexistent"))
        func run(_ n: Int, _ edit: (inout TestbedRun) -> Void) -> TestbedRun {
            var r = TestbedRun(entry: .init(node: "n\(n)", role: "r", host: TestbedHost(name: "h\(n)", port: nil)))
            r.facts["arch"] = "x86_64"
            edit(&r)
            return r
        }
        let runs = [
            run(1) { $0.relayed = ["kernel", "initrd", "kexec.sh"] },
            run(2) { $0.relayed = ["kernel", "initrd", "kexec.sh"]; $0.relayedFrom = "h1" },
            run(3) { $0.fromShared = ["kernel", "initrd"]; $0.pushed = ["kexec.sh"] },
            run(4) { $0.fromShared = ["kexec.sh"] },
            run(5) { _ in },
            run(6) { $0.facts = [:]; $0.error = "unreachable" },
        ]
        // One chain fed once: its tar, about the size of its files.
        XCTAssertEqual(KexecStart.distributionSummary(runs, bundle: bundle, relayFed: 11_535_360 + 3_072),
                       "bundle: 2 host(s) through the relay chain, 1 copied it from the shared folder, 1 got files over SSH, 1 had it (11.0 MiB sent from here)")
        XCTAssertTrue(KexecStart.distributionSummary(Array(runs[2...2]), bundle: bundle, relayFed: 0).hasSuffix("(1.0 KiB sent from here)"))
    }
}
