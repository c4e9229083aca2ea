import Foundation
import XCTest
@testable import NXCDriver
@testable import NXCDeployment

/// `nxc driver`: steps, failures, and a timeout that ends the whole script at the deadline.
final class DriverTests: XCTestCase {
    final class Lines: @unchecked Sendable {
        private let lock = NSLock()
        private var list: [String] = []
        func add(_ s: String) { lock.lock(); list.append(s); lock.unlock() }
        var all: [String] { lock.lock(); defer { lock.unlock() }; return list }
    }

    func testStepsOutputAndTheFailingStep() throws {
        let work = try scratchFolder()
        defer { try? FileManager.default.removeItem(atPath: work) }
        let lines = Lines()
        let r = try Driver.run(script: "echo hello\necho oops >&2\nfalse\necho never\n", directory: work,
                               nxcDirectory: "/nonexistent", timeout: 30, output: lines.add)
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.steps.map(\.command), ["echo hello", "echo oops", "false"])
        XCTAssertTrue(lines.all.contains("hello"), "\(lines.all)")
        XCTAssertTrue(lines.all.contains("oops"), "\(lines.all)")
        XCTAssertTrue(lines.all.contains("── step 3: false"), "\(lines.all)")
        XCTAssertFalse(lines.all.contains("never"))
        XCTAssertTrue(r.summary.contains("FAILED at step 3 of 3 (exit 1)"), r.summary)
    }

    /// `--timeout 2` on a script that sleeps 25 s: the driver returns at the deadline (not when the
    /// sleeps end), exit 124, and every process of the script is gone, also a background one that
    /// holds the output pipes open.
    func testTimeoutEndsTheWholeScriptAtTheDeadline() throws {
        let work = try scratchFolder()
        defer { try? FileManager.default.removeItem(atPath: work) }
        for script in ["sleep 25", "sleep 25 & echo $! > sleep.pid; sleep 25", "(sleep 25; echo late) & echo $! > sleep.pid; wait"] {
            unlink(work + "/sleep.pid")
            let lines = Lines()
            let started = Date()
            let r = try Driver.run(script: script, directory: work, nxcDirectory: "/nonexistent", timeout: 2, output: lines.add)
            let elapsed = Date().timeIntervalSince(started)
            XCTAssertEqual(r.status, 124, script)
            XCTAssertLessThan(elapsed, 5, "\(script): returned after \(elapsed) s")
            XCTAssertTrue(lines.all.contains { $0.contains("did not finish within 2 s") }, "\(script): \(lines.all)")
            if let text = try? String(contentsOfFile: work + "/sleep.pid", encoding: .utf8),
               let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
                let deadline = Date().addingTimeInterval(2)
                while Date() < deadline && Self.exists(pid) { usleep(50_000) }
                XCTAssertFalse(Self.exists(pid), "\(script): background PID \(pid) still runs")
            }
        }
    }

    /// A script that ends normally but leaves a background job holding its output: the driver
    /// returns without waiting for it, and the job is stopped with the script's group.
    func testLeftoverBackgroundJobDoesNotHoldTheDriver() throws {
        let work = try scratchFolder()
        defer { try? FileManager.default.removeItem(atPath: work) }
        let started = Date()
        let r = try Driver.run(script: "sleep 25 & echo $! > sleep.pid\necho done", directory: work,
                               nxcDirectory: "/nonexistent", timeout: 60) { _ in }
        XCTAssertEqual(r.status, 0)
        XCTAssertLessThan(Date().timeIntervalSince(started), 5)
        let pid = try XCTUnwrap(Int32((try String(contentsOfFile: work + "/sleep.pid", encoding: .utf8)).trimmingCharacters(in: .whitespacesAndNewlines)))
        let deadline = Date().addingTimeInterval(2)
        while Date() < deadline && Self.exists(pid) { usleep(50_000) }
        XCTAssertFalse(Self.exists(pid), "background PID \(pid) still runs")
    }

    /// Alive and not a zombie waiting for a parent that does not reap.
    static func exists(_ pid: Int32) -> Bool {
        guard kill(pid, 0) == 0 || errno == EPERM else { return false }
        return Processes.procStat(pid)?.zombie == false
    }
}

/// A fresh scratch folder for one test.
private func scratchFolder() throws -> String {
    let dir = NSTemporaryDirectory() + "nxc-driver-\(UUID().uuidString.prefix(8))"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}
