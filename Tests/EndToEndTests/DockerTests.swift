import Foundation
import XCTest
import NXCBuild
import NXCDeploy
import NXCDeployment
import NXCStore

/// docker flavour end to end on a real Docker engine: Debian's docker.io and docker-compose are
/// installed if missing, a dockerd is started when none answers (and stopped, by its PID, after);
/// build and start compositions/webserver, the vm-ramdisk checks, compose's own validation of the
/// generated file, and nothing of the project left after `nxc stop`. Runs when NXC_E2E=1.
final class DockerTests: XCTestCase {
    static let repo = VMRamdiskTests.repo
    var nxc: String { ProcessInfo.processInfo.environment["NXC_BIN"] ?? Self.repo + "/.build/release/nxc" }
    var project = ""
    /// The dockerd this test started, if it had to.
    var dockerd: Int32?

    override func setUpWithError() throws {
        try XCTSkipUnless(ProcessInfo.processInfo.environment["NXC_E2E"] == "1", "set NXC_E2E=1 to run the end-to-end tests")
        project = NSTemporaryDirectory() + "nxc-docker-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: project, withIntermediateDirectories: true)
        dockerd = try ensureDockerEngine(log: project + "/dockerd.log")
    }

    override func tearDown() {
        // This project's deployment, and those of the template projects inside it.
        let subfolders = ((try? FileManager.default.contentsOfDirectory(atPath: project)) ?? []).map { project + "/" + $0 }
        for dir in [project] + subfolders where !project.isEmpty && FileManager.default.fileExists(atPath: dir + "/.nxc/current") {
            _ = try? NxcSession(nxc: nxc, project: dir).run(["stop"], timeout: 120)
        }
        if let pid = dockerd {
            XCTAssertTrue(Processes.stop(pid, grace: 30), "dockerd \(pid) did not stop")
        }
        if !project.isEmpty { try? FileManager.default.removeItem(atPath: project) }
    }

    var session: NxcSession { NxcSession(nxc: nxc, project: project) }
    var env: [String: String] { session.environment() }

    @discardableResult
    func run(_ args: [String], timeout: Double = 900) throws -> (status: Int32, output: String) {
        try session.run(args, timeout: timeout)
    }

    func execOn(_ target: String, _ command: [String]) throws -> (status: Int32, output: String) {
        try session.exec(target, command)
    }

    func leftovers(_ project: String) throws -> String {
        var out = ""
        for argv in [["docker", "ps", "-a", "-q"], ["docker", "network", "ls", "-q"], ["docker", "volume", "ls", "-q"]] {
            out += try Command.run(argv + ["--filter", "label=com.docker.compose.project=\(project)"], timeout: 30)
        }
        return out.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func testWebserverInContainers() throws {
        let comp = Self.repo + "/compositions/webserver"
        let b = try run(["build", "-f", "docker", comp], timeout: 1800)
        XCTAssertEqual(b.status, 0, b.output)
        let dir = project + "/build/webserver/docker"
        for f in ["image.tar", "image.id", "docker-compose.yml", "deployment.json", "manifest.json"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/" + f), "missing \(f)")
        }
        try assertManifestListsEveryFile(dir, generated: ["docker-compose.yml", "deployment.json"])
        // docker-compose itself accepts the generated file.
        let config = try Command.status(["docker-compose", "-f", dir + "/docker-compose.yml", "config", "-q"], timeout: 60)
        XCTAssertEqual(config.0, 0, config.1)

        let s = try run(["start", "-f", "docker", "--timeout", "180", comp], timeout: 600)
        XCTAssertEqual(s.status, 0, s.output)
        guard s.status == 0 else { return }
        XCTAssertTrue(s.output.contains("image nxc-webserver:docker: loaded") || s.output.contains("already loaded"), s.output)
        for (node, role) in [("server", "server"), ("client1", "client"), ("client2", "client")] {
            XCTAssertEqual(try execOn(node, ["hostname"]).output, node)
            XCTAssertEqual(try execOn(node, ["cat", "/etc/nxc/role"]).output, role)
        }
        XCTAssertEqual(try execOn("client1", ["curl", "-sf", "http://server/"]).output, "hello from nxc")
        XCTAssertEqual(try execOn("server", ["systemctl", "is-active", "nginx"]).status, 0)
        XCTAssertNotEqual(try execOn("client1", ["systemctl", "is-active", "nginx"]).status, 0)
        XCTAssertNotEqual(try execOn("client2", ["systemctl", "is-active", "nginx"]).status, 0)
        // systemd as PID 1, without privileges.
        XCTAssertEqual(try execOn("server", ["cat", "/proc/1/comm"]).output, "systemd")
        let state = RuntimeState.load(from: project + "/.nxc/run/webserver.docker")
        XCTAssertEqual(state?.startMethod, "docker", "the state names the method that wrote it")
        let name = try XCTUnwrap(state.flatMap(composeProjectName), "the docker method's own state names the compose project")
        let privileged = try Command.run(["docker", "inspect", "--format", "{{.HostConfig.Privileged}} {{.HostConfig.CapAdd}}",
                                          name + "-server"], timeout: 30)
        XCTAssertEqual(privileged.trimmingCharacters(in: .whitespacesAndNewlines), "false []")
        // The role's published port: on 127.0.0.1 only, and nginx answers there.
        let port = try Command.run(["docker", "port", name + "-server", "80/tcp"], timeout: 30)
            .split(separator: "\n").map(String.init)
        XCTAssertEqual(port.count, 1, "\(port)")
        XCTAssertTrue(port.first?.hasPrefix("127.0.0.1:") == true, "\(port)")
        let page = try Command.run(["python3", "-c", "import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=20).read().decode())",
                                    "http://" + (port.first ?? "")], timeout: 60)
        XCTAssertEqual(page, "hello from nxc\n")
        let status = try run(["status", "--json"])
        XCTAssertTrue(status.output.contains("\"state\" : \"running\""), status.output)

        // nxc wait and nxc driver (the composition's test, then a failing script).
        XCTAssertEqual(try run(["wait", "server", "--unit", "nginx", "--timeout", "30"]).status, 0)
        XCTAssertEqual(try run(["wait", "client", "--cmd", "test -s /etc/nxc/role", "--timeout", "30"]).status, 0)
        let portWait = try run(["wait", "server", "--port", "80", "--timeout", "30"])
        XCTAssertEqual(portWait.status, 0)
        XCTAssertTrue(portWait.output.contains("server: TCP port 80 listening"), portWait.output)
        let never = try run(["wait", "client", "--port", "80", "--timeout", "3"])
        XCTAssertNotEqual(never.status, 0)
        XCTAssertTrue(never.output.contains("client1: not TCP port 80 listening after 3 s"), never.output)
        let driven = try run(["driver"], timeout: 300)
        XCTAssertEqual(driven.status, 0, driven.output)
        XCTAssertTrue(driven.output.contains("── step 2: nxc exec client -- curl -sf http://server/"), driven.output)
        XCTAssertTrue(driven.output.contains("client2: hello from nxc"), driven.output)
        XCTAssertTrue(driven.output.contains("driver: 2 step(s) passed"), driven.output)
        let failing = project + "/failing.sh"
        try Data("nxc exec server -- true\nnxc exec client -- sh -c 'test \"$(hostname)\" = client1'\nnxc exec server -- true\n".utf8)
            .write(to: URL(fileURLWithPath: failing))
        let bad = try run(["driver", failing], timeout: 300)
        XCTAssertEqual(bad.status, 1, bad.output)
        XCTAssertTrue(bad.output.contains("driver: FAILED at step 2 of 2 (exit 1) on client2: nxc exec client -- sh -c"), bad.output)

        // connect: a tmux session, one pane per node, each a shell in its container.
        let tmux = "nxc-docker-e2e-\(getpid())"
        let conn = try Command.status([nxc, "connect", "--project", project, "--detach", "--session", tmux], environment: env, timeout: 60)
        XCTAssertEqual(conn.0, 0, conn.1)
        defer { _ = try? Command.status(["tmux", "kill-session", "-t", tmux], timeout: 10) }
        try assertPanesAreShells(session: tmux, nameCommand: "hostname", timeout: 30)

        // A second start while it runs is refused; the running one is untouched.
        let again = try run(["start", "-f", "docker", comp], timeout: 120)
        XCTAssertNotEqual(again.status, 0)
        XCTAssertTrue(again.output.contains("already running"), again.output)

        XCTAssertEqual(try run(["stop"], timeout: 120).status, 0)
        XCTAssertEqual(try leftovers(name), "", "containers, networks or volumes of \(name) left")
    }

    /// The templates the engine allows run their own test in containers too: basic here (its only
    /// run: TemplatesTests leaves it to this test), webserver in testWebserverInContainers
    /// (compositions/webserver holds the template's files; its `driver` runs the template's test).
    /// (nfs needs the host kernel's nfsd and mount(2): not without privileges; see docs/driver.md.)
    func testTemplatesInContainers() throws {
        XCTAssertTrue(FileManager.default.contentsEqual(atPath: Self.repo + "/compositions/webserver/composition.yaml",
                                                       andPath: Self.repo + "/templates/webserver/composition.yaml"),
                      "testWebserverInContainers stands for the webserver template")
        for name in ["basic"] {
            let dir = project + "/" + name
            let made = try Command.status([nxc, "init", "-t", name, dir], environment: env, timeout: 30)
            XCTAssertEqual(made.0, 0, made.1)
            let t = NxcSession(nxc: nxc, project: dir)
            XCTAssertEqual(try t.run(["build", "-f", "docker"], timeout: 1800).status, 0, name)
            let s = try t.run(["start", "-f", "docker", "--timeout", "180"], timeout: 600)
            XCTAssertEqual(s.status, 0, name)
            if s.status == 0 {
                let d = try t.run(["driver", "--timeout", "300"], timeout: 400)
                XCTAssertEqual(d.status, 0, "\(name): \(d.output)")
                XCTAssertTrue(d.output.contains("step(s) passed"), d.output)
            }
            XCTAssertEqual(try t.run(["stop"], timeout: 120).status, 0)
        }
    }
}
