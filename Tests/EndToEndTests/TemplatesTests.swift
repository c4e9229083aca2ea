import Foundation
import XCTest
import NXCBuild
import NXCDeploy
import NXCDeployment
import NXCStore

/// Every template of `nxc init -t list` builds, starts and passes its own test with `nxc driver`
/// (the store is shared with the other end-to-end tests), each booted once in all: nfs and slurm
/// here in vm-ramdisk VMs; `webserver` in the VMs of VMRamdiskTests (`nxc init -t webserver`,
/// driven after its own checks) and in containers; `basic` (one role, no kernel feature) in
/// containers only (DockerTests.testTemplatesInContainers). Runs when NXC_E2E=1.
final class TemplatesTests: XCTestCase {
    static let repo = VMRamdiskTests.repo
    var nxc: String { ProcessInfo.processInfo.environment["NXC_BIN"] ?? Self.repo + "/.build/release/nxc" }
    var work = ""

    override func setUpWithError() throws {
        try XCTSkipUnless(ProcessInfo.processInfo.environment["NXC_E2E"] == "1", "set NXC_E2E=1 to run the end-to-end tests")
        work = NSTemporaryDirectory() + "nxc-templates-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
    }

    override func tearDown() {
        guard !work.isEmpty else { return }
        for t in (try? FileManager.default.contentsOfDirectory(atPath: work)) ?? [] {
            let p = work + "/" + t
            if FileManager.default.fileExists(atPath: p + "/.nxc/current") {
                _ = try? Command.status([nxc, "stop", "--project", p], environment: env, timeout: 120)
            }
        }
        try? FileManager.default.removeItem(atPath: work)
    }

    var env: [String: String] {
        var e = ProcessInfo.processInfo.environment
        e["NXC_STORE"] = Store.defaultRoot()
        e["HOME"] = work
        return e
    }

    func nxcRun(_ args: [String], in dir: String, timeout: Double = 1800) throws -> (status: Int32, output: String) {
        let r = try Command.status([nxc] + args + ["--project", dir], environment: env, timeout: timeout)
        print("$ nxc \(args.joined(separator: " ")) [\(dir)] → \(r.0)\n\(r.1)")
        return (r.0, r.1)
    }

    func testEveryTemplatePassesItsTestInVMs() throws {
        let started = Date()
        let list = try Command.status([nxc, "init", "-t", "list"], environment: env, timeout: 30)
        XCTAssertEqual(list.0, 0)
        let names = list.1.split(separator: "\n").map(String.init)
        XCTAssertEqual(names, ["basic", "nfs", "slurm", "webserver"])
        // basic and webserver: see the class comment.
        for name in names where name != "webserver" && name != "basic" {
            let dir = work + "/" + name
            let t0 = Date()
            let made = try Command.status([nxc, "init", "-t", name, dir], environment: env, timeout: 30)
            XCTAssertEqual(made.0, 0, made.1)
            XCTAssertEqual(try nxcRun(["build", "-f", "vm-ramdisk"], in: dir, timeout: 2400).status, 0, name)
            let s = try nxcRun(["start", "-f", "vm-ramdisk", "--timeout", "420"], in: dir, timeout: 600)
            XCTAssertEqual(s.status, 0, name)
            if s.status == 0 {
                let d = try nxcRun(["driver", "--timeout", "600"], in: dir, timeout: 700)
                XCTAssertEqual(d.status, 0, "\(name): \(d.output)")
                XCTAssertTrue(d.output.contains("step(s) passed"), d.output)
            }
            XCTAssertEqual(try nxcRun(["stop"], in: dir, timeout: 120).status, 0)
            print(String(format: "template %@: %.0f s (build, start, test, stop)", name, Date().timeIntervalSince(t0)))
        }
        print(String(format: "templates suite: %.0f s", Date().timeIntervalSince(started)))
    }
}
