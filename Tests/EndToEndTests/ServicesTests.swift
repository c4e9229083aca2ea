import Foundation
import XCTest
import NXCBuild
import NXCDeploy
import NXCDeployment

/// The services corpus (Fixtures/services/composition.yaml): stock Debian services, some of them
/// sandboxed by their own units (redis-server: PrivateUsers, ProtectSystem=strict, a system call
/// filter), all on one node `svc`. One test per flavour: build, start once, check that every
/// service answers, stop. (A kernel NFS server is templates/nfs's test, in VMs; see docs/docker.md.)
/// Each phase prints its duration; the table of what passes where is in docs/docker.md.
/// Runs when NXC_E2E=1, under the heavy lock (`flock /tmp/nxc-heavy.lock`).
final class ServicesTests: XCTestCase {
    static let repo = VMRamdiskTests.repo
    var nxc: String { ProcessInfo.processInfo.environment["NXC_BIN"] ?? Self.repo + "/.build/release/nxc" }
    var project = ""
    /// The dockerd this test started, if it had to.
    var dockerd: Int32?

    override func setUpWithError() throws {
        try XCTSkipUnless(ProcessInfo.processInfo.environment["NXC_E2E"] == "1", "set NXC_E2E=1 to run the end-to-end tests")
        project = NSTemporaryDirectory() + "nxc-services-\(UUID().uuidString.prefix(8))"
        // A copy: the build writes composition.lock beside the composition, not into the repository.
        try FileManager.default.createDirectory(atPath: project + "/services", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Self.repo + "/Tests/EndToEndTests/Fixtures/services/composition.yaml",
                                         toPath: project + "/services/composition.yaml")
    }

    override func tearDown() {
        if !project.isEmpty, FileManager.default.fileExists(atPath: project + "/.nxc/current") {
            _ = try? session.run(["stop"], timeout: 180)
        }
        if let pid = dockerd {
            XCTAssertTrue(Processes.stop(pid, grace: 30), "dockerd \(pid) did not stop")
        }
        if !project.isEmpty { try? FileManager.default.removeItem(atPath: project) }
    }

    var session: NxcSession { NxcSession(nxc: nxc, project: project) }
    var composition: String { project + "/services" }

    /// Runs one phase and prints how long it took.
    func phase<T>(_ name: String, _ body: () throws -> T) rethrows -> T {
        let t0 = Date()
        defer { print(String(format: "phase %@: %.1f s", name, Date().timeIntervalSince(t0))) }
        return try body()
    }

    /// Each stock service on `svc`: its units, and the command that shows it answering (run as root there).
    static let checks: [(service: String, units: [String], command: String)] = [
        ("redis-server", ["redis-server"], #"test "$(redis-cli ping)" = PONG"#),
        ("postgresql", ["postgresql@15-main"], #"cd / && test "$(runuser -u postgres -- psql -tAc 'select 1')" = 1"#),
        ("mariadb", ["mariadb"], #"test "$(mysql -NBe 'select 1')" = 1"#),
        ("nginx", ["nginx"], "curl -sf http://localhost/ | grep -q 'Welcome to nginx'"),
        ("munge", ["munge"], "munge -n | unmunge | grep -q 'STATUS: *Success'"),
        // slurmctld answers, lists slurmd's node as idle, and runs a job step on it.
        ("slurmctld + slurmd", ["slurmctld", "slurmd"],
         #"scontrol ping | grep -q UP && test "$(sinfo -h -N -o %N:%t)" = svc:idle && test "$(srun -N1 --immediate=30 hostname)" = svc"#),
    ]

    /// Every check on `svc`, each given `timeout` seconds to pass (services may still be starting:
    /// VMs are ready when SSH answers); returns the services that never answered, and prints what
    /// systemd says of their units.
    func failingServices(timeout: Int) throws -> [String] {
        var failing: [String] = []
        for c in Self.checks {
            let r = try session.run(["wait", "svc", "--cmd", c.command, "--timeout", String(timeout)], timeout: Double(timeout) + 60)
            if r.status != 0 {
                failing.append(c.service)
                _ = try? session.exec("svc", ["systemctl", "status", "--no-pager", "--lines", "15"] + c.units)
            }
        }
        return failing
    }

    func testServicesInVMs() throws {
        let b = try phase("build (vm-ramdisk)") { try session.run(["build", "-f", "vm-ramdisk", composition], timeout: 2400) }
        XCTAssertEqual(b.status, 0, b.output)
        guard b.status == 0 else { return }
        let s = try phase("start (1 VM)") {
            try session.run(["start", "-f", "vm-ramdisk", "--timeout", "600", composition], timeout: 900)
        }
        XCTAssertEqual(s.status, 0, s.output)
        guard s.status == 0 else { return }
        try phase("checks") {
            XCTAssertEqual(try failingServices(timeout: 300), [], "services that did not answer in vm-ramdisk")
        }
        try phase("stop") { XCTAssertEqual(try session.run(["stop"], timeout: 180).status, 0) }
    }

    func testServicesInContainers() throws {
        try phase("engine") { dockerd = try ensureDockerEngine(log: project + "/dockerd.log") }
        let b = try phase("build (docker)") { try session.run(["build", "-f", "docker", composition], timeout: 2400) }
        XCTAssertEqual(b.status, 0, b.output)
        guard b.status == 0 else { return }
        let s = try phase("start (1 container)") {
            try session.run(["start", "-f", "docker", "--timeout", "180", composition], timeout: 900)
        }
        XCTAssertEqual(s.status, 0, s.output)
        let name = try XCTUnwrap(RuntimeState.load(from: project + "/.nxc/run/services.docker").flatMap(composeProjectName))
        let container = name + "-svc"
        try phase("checks") {
            XCTAssertEqual(try failingServices(timeout: 60), [], "services that did not answer in docker")
            // Least privilege: not privileged, no added capability, the engine's default seccomp
            // profile, and of the host's cgroup tree only the node's own subtree is writable.
            let host = try Command.run(["docker", "inspect", "--format",
                                        "{{.HostConfig.Privileged}} {{.HostConfig.CapAdd}} {{.HostConfig.SecurityOpt}} {{.HostConfig.CgroupParent}}",
                                        container], timeout: 30).split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
            XCTAssertEqual(Array(host.prefix(3)), ["false", "[]", "[]"])
            // cgroupfs driver: the parent is a path; systemd driver: a slice inside nxc.slice.
            let parent = host.last.map { $0.hasPrefix("/") ? $0 : "/nxc.slice/" + $0 } ?? "?"
            XCTAssertTrue(parent.hasSuffix("/" + container) || parent.hasSuffix(String(container.map { $0.isLetter || $0.isNumber ? $0 : "_" }) + ".slice"),
                          "cgroup parent \(parent) is not the node's own")
            let v1 = FileManager.default.fileExists(atPath: "/sys/fs/cgroup/systemd")
            let mounts = try session.exec("svc", ["findmnt", "-rn", "-t", "cgroup,cgroup2", "-o", "TARGET,FSROOT,OPTIONS"])
            let writable = mounts.output.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
                .filter { $0.count == 3 && $0[2].split(separator: ",").contains("rw") }
            XCTAssertEqual(writable.map { Array($0.prefix(2)) }, [[(v1 ? "/sys/fs/cgroup/systemd" : "/sys/fs/cgroup") + parent, parent]],
                           mounts.output)
            // systemd keeps the node's processes in that subtree.
            let own = try session.exec("svc", ["sh", "-c", v1 ? "grep :name=systemd: /proc/1/cgroup" : "grep ^0:: /proc/1/cgroup"])
            XCTAssertTrue(own.output.contains(":\(parent)/"), own.output)
        }
        try phase("stop") {
            XCTAssertEqual(try session.run(["stop"], timeout: 180).status, 0)
            // As root, nxc stop also removes the (empty) cgroups the engine made for the node's parent.
            for h in ["systemd", "memory", "pids", "unified"] where FileManager.default.fileExists(atPath: "/sys/fs/cgroup/\(h)") && getuid() == 0 {
                XCTAssertFalse(FileManager.default.fileExists(atPath: "/sys/fs/cgroup/\(h)/nxc/\(container)"), "cgroup \(h)/nxc/\(container) left")
            }
        }
    }
}
