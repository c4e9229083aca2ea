import Foundation
import XCTest
@testable import NXCDeploy
@testable import NXCDeployment

/// `nxc stop` signals a recorded PID only while it is still the process nxc started.
final class RuntimeStateTests: XCTestCase {
    func state(_ processes: [RuntimeState.Process]) -> RuntimeState {
        RuntimeState(composition: "c", flavour: "vm-ramdisk", startMethod: "qemu", identity: DeployTests.identity,
                     knownHosts: "/dev/null", startedAt: Date(), processes: processes)
    }

    func sleeper() throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sleep")
        p.arguments = ["30"]
        try p.run()
        return p
    }

    /// A state.json naming an unrelated process (here a `sleep` this test started), written by an
    /// nxc that recorded no identities: nothing is signalled.
    /// A process that has exited but is not reaped yet (a daemonized QEMU waits for PID 1 to reap it)
    /// is not alive: `stop` returns once it has exited, and the caller must not see it as running.
    func testZombieIsNotAlive() throws {
        var pid: pid_t = 0
        let argv: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/true"), nil]
        defer { for a in argv { free(a) } }
        XCTAssertEqual(posix_spawn(&pid, "/bin/true", nil, nil, argv, nil), 0)
        let deadline = Date().addingTimeInterval(10)
        while Processes.procStat(pid)?.zombie != true, Date() < deadline { usleep(10_000) }
        XCTAssertEqual(Processes.procStat(pid)?.zombie, true, "the child is a zombie until reaped")
        XCTAssertEqual(kill(pid, 0), 0, "kill(2) still finds it")
        XCTAssertFalse(Processes.isAlive(pid))
        var status: Int32 = 0
        waitpid(pid, &status, 0)
    }

    func testLegacyRecordIsNotSignalled() throws {
        let sleep = try sleeper()
        defer { sleep.terminate(); sleep.waitUntilExit() }
        let run = try Hostile.scratch()
        defer { try? FileManager.default.removeItem(atPath: run) }
        let failed = QemuStart().stop(state([.init(name: "qemu", pid: sleep.processIdentifier, node: "server", console: nil)]),
                                      runDirectory: run)
        XCTAssertEqual(failed, [])
        Thread.sleep(forTimeInterval: 0.3)
        XCTAssertTrue(sleep.isRunning, "an unverifiable PID was signalled")
    }
}

extension RuntimeStateTests {
    func record(_ p: Process, _ change: (inout ProcessIdentity) -> Void = { _ in }) throws -> RuntimeState.Process {
        var id = try XCTUnwrap(ProcessIdentity.of(p.processIdentifier))
        change(&id)
        return .init(name: "qemu", pid: p.processIdentifier, node: "server", console: nil, identity: id)
    }

    /// Where the kernel and libc have pidfds (this machine: yes), `stop` pins the PID with one.
    func testPidfdIsUsedWhereAvailable() throws {
        let fd = Pidfd.open(getpid())
        if fd < 0 && errno == ENOSYS { throw XCTSkip("no pidfd_open here: stop falls back to kill(2)") }
        XCTAssertGreaterThanOrEqual(fd, 0)
        close(fd)
    }

    func testIdentityOfThisProcess() throws {
        let me = try XCTUnwrap(ProcessIdentity.of(getpid()))
        XCTAssertEqual(me.bootID.count, 36, me.bootID)
        XCTAssertFalse(me.argv0.isEmpty)
        XCTAssertEqual(ProcessIdentity.of(getpid()), me, "stable while the process lives")
        XCTAssertNil(ProcessIdentity.of(Int32.max))
    }

    /// The PID now names another process (another start time, another boot, another program):
    /// not signalled.
    func testReusedPIDIsNotSignalled() throws {
        let sleep = try sleeper()
        defer { sleep.terminate(); sleep.waitUntilExit() }
        let run = try Hostile.scratch()
        defer { try? FileManager.default.removeItem(atPath: run) }
        for change in [{ (i: inout ProcessIdentity) in i.startTime += 1 },
                       { (i: inout ProcessIdentity) in i.bootID = "00000000-0000-0000-0000-000000000000" },
                       { (i: inout ProcessIdentity) in i.argv0 = "qemu-system-x86_64" }] {
            let p = try record(sleep, change)
            XCTAssertEqual(Processes.ownership(p), .notOurs)
            XCTAssertEqual(Processes.stop(p, grace: 1), .notSignalled(.notOurs))
            XCTAssertEqual(QemuStart().stop(state([p]), runDirectory: run), [])
            Thread.sleep(forTimeInterval: 0.2)
            XCTAssertTrue(sleep.isRunning, "signalled a process that only has the recorded PID")
        }
    }

    /// The process nxc recorded is stopped.
    func testRecordedProcessIsStopped() throws {
        let sleep = try sleeper()
        defer { if sleep.isRunning { sleep.terminate() }; sleep.waitUntilExit() }
        let p = try record(sleep)
        XCTAssertEqual(Processes.ownership(p), .ours)
        XCTAssertTrue(Processes.isRunning(p))
        let started = Date()
        XCTAssertEqual(Processes.stop(p, grace: 5), .stopped)
        XCTAssertLessThan(Date().timeIntervalSince(started), 4)
        XCTAssertEqual(Processes.ownership(p), .gone)
        XCTAssertEqual(Processes.stop(p), .gone)
    }

    /// `nxc stop` with a stale state.json: says what it left alone, signals nothing, and the
    /// deployment counts as stopped (its state file is removed).
    func testStopWithStaleStateSignalsNothingAndSaysSo() throws {
        let sleep = try sleeper()
        defer { sleep.terminate(); sleep.waitUntilExit() }
        let run = try Hostile.scratch()
        defer { try? FileManager.default.removeItem(atPath: run) }
        let stale = try record(sleep) { $0.bootID = "00000000-0000-0000-0000-000000000000" }
        let legacy = RuntimeState.Process(name: "vde_switch", pid: sleep.processIdentifier, node: nil, console: nil)
        let s = state([stale, legacy])
        try s.save(in: run)
        let active = ActiveDeployment(deployment: Deployment(composition: "c", flavour: "vm-ramdisk", authorizedKeys: [], nodes: [:], order: []),
                                      state: RuntimeState.load(from: run), method: QemuStart(), runDirectory: run, file: run + "/d.json")
        let notices = NoticeCollector()
        XCTAssertEqual(Operations.stop(active, notice: notices.add), [])
        XCTAssertTrue(sleep.isRunning)
        XCTAssertEqual(notices.lines.count, 2, "\(notices.lines)")
        XCTAssertTrue(notices.lines[0].contains("PID \(sleep.processIdentifier) (qemu of node server) is no longer the process nxc started; not signalled"),
                      "\(notices.lines)")
        XCTAssertTrue(notices.lines[1].contains("older nxc") && notices.lines[1].contains("not signalled"), "\(notices.lines)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: RuntimeState.path(in: run)))
    }

    /// State files of older versions (no identities) still load; new ones keep the identity.
    func testStateFilesWithAndWithoutIdentities() throws {
        let run = try Hostile.scratch()
        defer { try? FileManager.default.removeItem(atPath: run) }
        let old = #"{"composition":"c","flavour":"vm-ramdisk","startMethod":"qemu","identity":{"privateKey":"/k","publicKey":"p"},"#
            + #""knownHosts":"/k","startedAt":"2025-01-01T00:00:00Z","processes":[{"name":"qemu","pid":4242,"node":"server"}]}"#
        try Data(old.utf8).write(to: URL(fileURLWithPath: RuntimeState.path(in: run)))
        let loaded = try XCTUnwrap(RuntimeState.load(from: run))
        XCTAssertNil(loaded.processes.first?.identity)
        let id = ProcessIdentity(startTime: 123, bootID: "b", argv0: "qemu-system-x86_64")
        try state([.init(name: "qemu", pid: 4242, node: "server", console: nil, identity: id)]).save(in: run)
        XCTAssertEqual(RuntimeState.load(from: run)?.processes.first?.identity, id)
    }
}

final class NoticeCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [String] = []
    func add(_ s: String) { lock.lock(); list.append(s); lock.unlock() }
    var lines: [String] { lock.lock(); defer { lock.unlock() }; return list }
}

/// The method that started a deployment is the one that stops it, from state.json: a flavour file
/// edited or removed since the start does not leave its nodes without a way to stop them.
final class ActiveDeploymentTests: XCTestCase {
    func testStateNamesTheMethodEvenWhenTheFlavourIsGone() throws {
        let dir = try Hostile.scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let project = Project(directory: dir)
        // A project flavour "mine" started with qemu, then deleted.
        try FileManager.default.createDirectory(atPath: dir + "/flavours", withIntermediateDirectories: true)
        let text = try String(contentsOfFile: DeployTests.repo + "/flavours/vm-ramdisk.yaml", encoding: .utf8)
            .replacingOccurrences(of: "name: vm-ramdisk", with: "name: mine")
        try text.write(toFile: dir + "/flavours/mine.yaml", atomically: true, encoding: .utf8)
        let doc = Deployment(composition: "c", flavour: "mine", authorizedKeys: [], nodes: ["n": .init(role: "r", address: nil)], order: ["n"])
        try writeAtomically(try doc.encoded(), to: project.deploymentFile(composition: "c", flavour: "mine"))
        let run = project.runDirectory(composition: "c", flavour: "mine")
        try RuntimeState(composition: "c", flavour: "mine", startMethod: "qemu", identity: DeployTests.identity,
                         knownHosts: "/dev/null", startedAt: Date(), processes: []).save(in: run)
        try FileManager.default.removeItem(atPath: dir + "/flavours/mine.yaml")

        let active = try ActiveDeployment.find(project: project, flavour: "mine", composition: "c")
        XCTAssertTrue(active.method is QemuStart)
        XCTAssertEqual(Operations.stop(active, notice: { _ in }), [])
        XCTAssertNil(RuntimeState.load(from: run), "stopped")
        // Nothing runs any more: now the flavour is needed, and its absence is said.
        XCTAssertThrowsError(try ActiveDeployment.find(project: project, flavour: "mine", composition: "c")) { e in
            XCTAssertTrue("\(e)".contains("unknown flavour 'mine'"), "\(e)")
        }
    }
}

/// `--composition C` without `-f`: the current deployment's flavour if C is current, else C's one
/// deployment; several are named.
final class DeployedFlavourTests: XCTestCase {
    func testCompositionWithoutFlavourFindsItsOwnDeployment() throws {
        let dir = try Hostile.scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let project = Project(directory: dir)
        for (c, f) in [("stock", "pxe"), ("web", "pxe-nfs-store"), ("web", "vm-ramdisk")] {
            let doc = Deployment(composition: c, flavour: f, authorizedKeys: [], nodes: ["n": .init(role: "r", address: nil)], order: ["n"])
            try writeAtomically(try doc.encoded(), to: project.deploymentFile(composition: c, flavour: f))
        }
        try writeAtomically(Data("{}".utf8), to: project.reportFile(composition: "stock", flavour: "pxe"))
        try project.setCurrent(composition: "web", flavour: "pxe-nfs-store")
        XCTAssertEqual(project.deployedFlavours(composition: "stock"), ["pxe"])
        XCTAssertEqual(project.deployedFlavours(composition: "web"), ["pxe-nfs-store", "vm-ramdisk"])
        XCTAssertEqual(try ActiveDeployment.find(project: project, flavour: nil, composition: "stock").deployment.flavour, "pxe")
        XCTAssertEqual(try ActiveDeployment.find(project: project, flavour: nil, composition: "web").deployment.flavour, "pxe-nfs-store")
        try project.setCurrent(composition: "stock", flavour: "pxe")
        XCTAssertThrowsError(try ActiveDeployment.find(project: project, flavour: nil, composition: "web")) { e in
            XCTAssertTrue("\(e)".contains("web has deployments for pxe-nfs-store, vm-ramdisk: give -f FLAVOUR"), "\(e)")
        }
    }
}

/// Each start method keeps its own state under its name; state files of older nxc (docker's project
/// at the top level) still lead `stop` to the containers.
final class MethodStateTests: XCTestCase {
    struct Mine: Codable, Equatable { var name: String; var containers: [String: String] }

    func testOwnStateRoundTripsUnderTheMethodName() throws {
        let dir = NSTemporaryDirectory() + "nxc-own-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var s = RuntimeState(composition: "c", flavour: "docker", startMethod: "docker", identity: DeployTests.identity,
                             knownHosts: "/k", startedAt: Date(timeIntervalSince1970: 0), processes: [])
        XCTAssertNil(s.own(Mine.self))
        let mine = Mine(name: "nxc-c-1234", containers: ["server": "nxc-c-1234-server"])
        try s.setOwn(mine)
        try s.save(in: dir)
        let text = try String(contentsOfFile: RuntimeState.path(in: dir), encoding: .utf8)
        XCTAssertTrue(text.contains("\"methods\" : {\n    \"docker\" : {"), text)
        XCTAssertEqual(RuntimeState.load(from: dir)?.own(Mine.self), mine)
        // Another method's state does not read as this one's.
        var other = try XCTUnwrap(RuntimeState.load(from: dir))
        other.startMethod = "qemu"
        XCTAssertNil(other.own(Mine.self))
    }

    func testOlderStateFilesKeepDockersProject() throws {
        let dir = NSTemporaryDirectory() + "nxc-own-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let old = """
            {"composition": "c", "flavour": "docker", "startMethod": "docker", "knownHosts": "/k",
             "identity": {"privateKey": "/p", "publicKey": "ssh-ed25519 AAAA x"}, "startedAt": "2026-12-01T10:00:00Z",
             "processes": [], "project": {"name": "nxc-c-1234", "composeFile": "/r/docker-compose.yml",
             "containers": {"server": "nxc-c-1234-server"}}}
            """
        try Data(old.utf8).write(to: URL(fileURLWithPath: RuntimeState.path(in: dir)))
        let s = try XCTUnwrap(RuntimeState.load(from: dir))
        XCTAssertEqual(s.own(Mine.self), Mine(name: "nxc-c-1234", containers: ["server": "nxc-c-1234-server"]))
    }
}
