import Foundation
import XCTest
import NXCBuild
import NXCDeploy
import NXCDeployment
import NXCStore

/// nspawn flavour end to end: systemd-nspawn (Debian's systemd-container) boots one container per
/// node from the build's tree, as root; build and start compositions/webserver, the checks the
/// other flavours pass (hostnames, roles, the page fetched by name from client1, nginx only on the
/// server, driver, status, an interactive shell), then the slurm template's own test; and after
/// `nxc stop` no container, network namespace, cgroup or unpacked tree is left. Runs when
/// NXC_E2E=1; skipped, saying why, where systemd-nspawn cannot run (not root, not installed).
final class NspawnTests: XCTestCase {
    static let repo = VMRamdiskTests.repo
    var nxc: String { ProcessInfo.processInfo.environment["NXC_BIN"] ?? Self.repo + "/.build/release/nxc" }
    var project = ""

    override func setUpWithError() throws {
        try XCTSkipUnless(ProcessInfo.processInfo.environment["NXC_E2E"] == "1", "set NXC_E2E=1 to run the end-to-end tests")
        try XCTSkipUnless(geteuid() == 0, "the nspawn flavour needs root (overlay mounts, network namespaces, cgroups)")
        try XCTSkipUnless(Command.which("systemd-nspawn") != nil, "systemd-nspawn is not installed (apt-get install systemd-container; make test does)")
        project = NSTemporaryDirectory() + "nxc-nspawn-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: project, withIntermediateDirectories: true)
    }

    override func tearDown() {
        let subfolders = ((try? FileManager.default.contentsOfDirectory(atPath: project)) ?? []).map { project + "/" + $0 }
        for dir in [project] + subfolders where !project.isEmpty && FileManager.default.fileExists(atPath: dir + "/.nxc/current") {
            _ = try? NxcSession(nxc: nxc, project: dir).run(["stop"], timeout: 120)
        }
        if !project.isEmpty { try? FileManager.default.removeItem(atPath: project) }
    }

    var session: NxcSession { NxcSession(nxc: nxc, project: project) }

    /// What a deployment in `run` set up on this machine and `stop` must remove.
    func leftovers(run: String, processes: [RuntimeState.Process]) -> [String] {
        let tag = String(NXCStore.sha256(bytes: Array(run.utf8)).prefix(8))
        var left = processes.filter { Processes.ownership($0) == .ours }.map { "PID \($0.pid) (\($0.label))" }
        left += ((try? FileManager.default.contentsOfDirectory(atPath: "/run/netns")) ?? []).filter { $0.contains(tag) }
        for h in ["/sys/fs/cgroup/nxc-nspawn/", "/sys/fs/cgroup/systemd/nxc-nspawn/", "/sys/fs/cgroup/unified/nxc-nspawn/"]
        where FileManager.default.fileExists(atPath: h + tag) { left.append(h + tag) }
        for dir in ["tree", "nodes"] where FileManager.default.fileExists(atPath: run + "/" + dir) { left.append(run + "/" + dir) }
        return left
    }

    /// `nxc cp` both ways with a role as target (a folder per node), and `nxc collect`.
    func checkCopyAndCollect() throws {
        let input = project + "/in"
        try FileManager.default.createDirectory(atPath: input + "/sub", withIntermediateDirectories: true)
        try Data("data\n".utf8).write(to: URL(fileURLWithPath: input + "/sub/a.txt"))
        let to = try session.run(["cp", input, "client:/srv/drop"])
        XCTAssertEqual(to.status, 0, to.output)
        for node in ["client1", "client2"] {
            XCTAssertEqual(try session.exec(node, ["cat", "/srv/drop/in/sub/a.txt"]).output, "data")
        }
        XCTAssertNotEqual(try session.exec("server", ["test", "-e", "/srv/drop"]).status, 0, "only the role's nodes")
        let out = project + "/out"
        let from = try session.run(["cp", "client:/srv/drop/in", out])
        XCTAssertEqual(from.status, 0, from.output)
        for node in ["client1", "client2"] {
            XCTAssertEqual(try String(contentsOfFile: "\(out)/\(node)/in/sub/a.txt", encoding: .utf8), "data\n")
        }
        XCTAssertEqual(try session.run(["cp", "server:/etc/hostname", out + "/one"]).status, 0)
        XCTAssertEqual(try String(contentsOfFile: out + "/one/hostname", encoding: .utf8), "server\n", "a node: no folder per node")
        let neither = try session.run(["cp", input, out])
        XCTAssertNotEqual(neither.status, 0)
        XCTAssertTrue(neither.output.contains("neither side is on a node"), neither.output)
        let gone = try session.run(["cp", "client1:/no/such/thing", out])
        XCTAssertNotEqual(gone.status, 0)
        XCTAssertTrue(gone.output.contains("client1: exit 2: sh: 1: cd: can't cd to /no/such"), gone.output)

        let c = try session.run(["collect", "--name", "run1"], timeout: 300)
        XCTAssertEqual(c.status, 0, c.output)
        XCTAssertTrue(c.output.contains("server: not collected: /no/such/file"), c.output)
        let results = project + "/results/run1"
        XCTAssertEqual(try String(contentsOfFile: results + "/server/etc/hostname", encoding: .utf8), "server\n")
        XCTAssertTrue(FileManager.default.fileExists(atPath: results + "/server/var/log/nginx/access.log"))
        let manifest = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: results + "/manifest.json"))) as? [String: Any])
        let files = try XCTUnwrap(manifest["files"] as? [[String: Any]])
        for node in ["server", "client1", "client2"] {
            let journal = try XCTUnwrap(files.first { $0["path"] as? String == node + "/journal.txt" }, node)
            XCTAssertEqual(journal["sha256"] as? String, try sha256(file: results + "/" + node + "/journal.txt"))
            XCTAssertGreaterThan(journal["size"] as? Int ?? 0, 0)
        }
        XCTAssertEqual((manifest["deployment"] as? [String: Any])?["composition"] as? String, "webserver")
        XCTAssertNotNil((manifest["build"] as? [String: Any])?["sha256"], "the artefacts' hashes")
        let again = try session.run(["collect", "--name", "run1"])
        XCTAssertNotEqual(again.status, 0)
        XCTAssertTrue(again.output.contains("exists already"), again.output)

        // An export carries the run, tied to the artefacts it was made with; verify checks both.
        let archive = project + "/paper.tar.zst"
        let e = try session.run(["export", "-f", "nspawn", "--results", results, "-o", archive, project + "/webserver"], timeout: 600)
        XCTAssertEqual(e.status, 0, e.output)
        let v = try Command.status([nxc, "verify", archive], environment: session.environment(), timeout: 900)
        XCTAssertEqual(v.0, 0, v.1)
        XCTAssertTrue(v.1.contains("results/run1: \(files.count) file(s) match the run's manifest, made with the exported nspawn artefacts"),
                      v.1)
    }

    func testWebserverAndSlurmInNspawn() throws {
        // compositions/webserver, with paths for `nxc collect` (the image is the same: collect is not in it).
        let comp = project + "/webserver"
        try FileManager.default.copyItem(atPath: Self.repo + "/compositions/webserver", toPath: comp)
        let yaml = try String(contentsOfFile: comp + "/composition.yaml", encoding: .utf8)
        let withCollect = yaml.replacingOccurrences(of: "  server:\n", with: "  server:\n    collect: [/var/log/nginx, /etc/hostname, /no/such/file]\n")
        XCTAssertNotEqual(withCollect, yaml)
        try Data(withCollect.utf8).write(to: URL(fileURLWithPath: comp + "/composition.yaml"))
        let b = try session.run(["build", "-f", "nspawn", comp], timeout: 1800)
        XCTAssertEqual(b.status, 0, b.output)
        let dir = project + "/build/webserver/nspawn"
        try assertManifestListsEveryFile(dir, generated: [])

        let s = try session.run(["start", "-f", "nspawn", "--timeout", "120", comp], timeout: 600)
        XCTAssertEqual(s.status, 0, s.output)
        let run = project + "/.nxc/run/webserver.nspawn"
        let state = try XCTUnwrap(RuntimeState.load(from: run))
        XCTAssertEqual(state.startMethod, "nspawn", "the state names the method that wrote it")
        if s.status == 0 {
            for (node, role) in [("server", "server"), ("client1", "client"), ("client2", "client")] {
                XCTAssertEqual(try session.exec(node, ["hostname"]).output, node)
                XCTAssertEqual(try session.exec(node, ["cat", "/etc/nxc/role"]).output, role)
                // systemd is the node's PID 1, in the node's own cgroup below nxc's.
                XCTAssertEqual(try session.exec(node, ["cat", "/proc/1/comm"]).output, "systemd")
            }
            XCTAssertEqual(try session.exec("client1", ["curl", "-sf", "http://server/"]).output, "hello from nxc")
            XCTAssertEqual(try session.exec("server", ["systemctl", "is-active", "nginx"]).status, 0)
            XCTAssertNotEqual(try session.exec("client1", ["systemctl", "is-active", "nginx"]).status, 0)
            XCTAssertNotEqual(try session.exec("client2", ["systemctl", "is-active", "nginx"]).status, 0)
            // The private network stays inside its namespaces: no default route out of a node.
            XCTAssertEqual(try session.exec("client1", ["ip", "route", "show", "default"]).output, "")
            let status = try session.run(["status", "--json"])
            XCTAssertEqual(status.output.components(separatedBy: "\"state\" : \"running\"").count - 1, 3, status.output)
            let driven = try session.run(["driver"], timeout: 300)
            XCTAssertEqual(driven.status, 0, driven.output)
            XCTAssertTrue(driven.output.contains("client2: hello from nxc"), driven.output)
            // `nxc connect`: a shell on a terminal of the node's own.
            let shell = try Command.status(["script", "-qec", "\(nxc) connect server --project \(project)", "/dev/null"],
                                           environment: session.environment(), timeout: 60,
                                           input: Data("echo TTY=$(tty) HOST=$(hostname)\nexit 3\n".utf8))
            XCTAssertTrue(shell.1.contains("TTY=/dev/pts/"), shell.1)
            XCTAssertTrue(shell.1.contains("HOST=server"), shell.1)
            try checkCopyAndCollect()
        }
        let stopped = try session.run(["stop"], timeout: 120)
        XCTAssertEqual(stopped.status, 0, stopped.output)
        XCTAssertEqual(leftovers(run: run, processes: state.processes), [])

        // The slurm template's own test (munge's key from the deployment's secret, slurmctld, srun
        // on both compute nodes). The nfs template needs the host kernel's nfsd: not in a container.
        let slurm = project + "/slurm"
        let made = try Command.status([nxc, "init", "-t", "slurm", slurm], environment: session.environment(), timeout: 30)
        XCTAssertEqual(made.0, 0, made.1)
        let t = NxcSession(nxc: nxc, project: slurm)
        XCTAssertEqual(try t.run(["build", "-f", "nspawn"], timeout: 1800).status, 0)
        let ts = try t.run(["start", "-f", "nspawn", "--timeout", "180"], timeout: 600)
        XCTAssertEqual(ts.status, 0, ts.output)
        if ts.status == 0 {
            let d = try t.run(["driver", "--timeout", "300"], timeout: 400)
            XCTAssertEqual(d.status, 0, d.output)
            XCTAssertTrue(d.output.contains("step(s) passed"), d.output)
        }
        XCTAssertEqual(try t.run(["stop"], timeout: 120).status, 0)
    }
}
