import Foundation
import XCTest
import NXCArchive
import NXCBuild
import NXCDeploy
import NXCDeployment
import NXCStore

/// End to end with real mmdebstrap and QEMU: build webserver, start 3 VMs, check them, stop.
/// Runs when NXC_E2E=1 (`make test` sets it, with NXC_BIN pointing at the release nxc).
final class VMRamdiskTests: XCTestCase {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    var nxc: String { ProcessInfo.processInfo.environment["NXC_BIN"] ?? Self.repo + "/.build/release/nxc" }
    var project = ""

    override func setUpWithError() throws {
        try XCTSkipUnless(ProcessInfo.processInfo.environment["NXC_E2E"] == "1", "set NXC_E2E=1 to run the end-to-end tests")
        project = NSTemporaryDirectory() + "nxc-e2e-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: project, withIntermediateDirectories: true)
    }

    override func tearDown() {
        if !project.isEmpty, FileManager.default.fileExists(atPath: project + "/.nxc/current") {
            _ = try? run(["stop"], timeout: 120)
        }
        if !project.isEmpty { try? FileManager.default.removeItem(atPath: project) }
    }

    @discardableResult
    func run(_ args: [String], timeout: Double = 900) throws -> (status: Int32, output: String) {
        let r = try Command.status([nxc] + args + (args.first == "exec" || args.first == "connect" ? [] : ["--project", project]),
                                   environment: env, timeout: timeout)
        print("$ nxc \(args.joined(separator: " ")) → \(r.0)\n\(r.1)")
        return (r.0, r.1)
    }

    /// exec and connect take --project before the target (their trailing arguments are the command).
    func execOn(_ target: String, _ command: [String]) throws -> (status: Int32, output: String) {
        let r = try Command.status([nxc, "exec", "--project", project, target, "--"] + command, environment: env, timeout: 120)
        print("$ nxc exec \(target) -- \(command.joined(separator: " ")) → \(r.0)\n\(r.1)")
        return (r.0, r.1)
    }

    var env: [String: String] {
        var e = ProcessInfo.processInfo.environment
        // The store is shared between tests (and with the user's builds) to keep the suite short.
        e["NXC_STORE"] = Store.defaultRoot()
        e["HOME"] = project  // no user key: nxc generates one in .nxc/
        return e
    }

    /// The webserver template (`nxc init -t webserver`, the same files as compositions/webserver):
    /// its build, its VMs, checks of what nxc promises, and the template's own test (TemplatesTests
    /// leaves this template to this test, so that its VMs boot once).
    func testWebserverInVMs() throws {
        let comp = project + "/webserver"
        let made = try Command.status([nxc, "init", "-t", "webserver", comp], environment: env, timeout: 30)
        XCTAssertEqual(made.0, 0, made.1)
        let b1 = try run(["build", "-f", "vm-ramdisk", comp], timeout: 1800)
        XCTAssertEqual(b1.status, 0, b1.output)
        let dir = project + "/build/webserver/vm-ramdisk"
        for f in ["kernel", "initrd", "launch.sh", "launch-server.sh", "launch-client1.sh", "launch-client2.sh", "manifest.json"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/" + f), "missing \(f)")
        }
        try assertManifestListsEveryFile(dir, generated: ["launch.sh", "launch-server.sh", "launch-client1.sh", "launch-client2.sh"])
        XCTAssertTrue(b1.output.contains("files for nxc start: "), b1.output)
        // Same inputs: no mmdebstrap, everything from the store.
        let b2 = try run(["build", "-f", "vm-ramdisk", comp], timeout: 600)
        XCTAssertEqual(b2.status, 0, b2.output)
        XCTAssertFalse(b2.output.contains("running mmdebstrap"), b2.output)
        XCTAssertTrue(b2.output.contains("base system: reused"), b2.output)

        // No private key anywhere in the initrd; the agent, its unit and the role file are there.
        let entries = try ArchiveReader.entries(path: dir + "/initrd")
        let keys = entries.filter { e in
            e.kind == .file && String(decoding: e.data.prefix(4096), as: UTF8.self).contains("PRIVATE KEY-----")
        }
        XCTAssertEqual(keys.map(\.path), [], "private keys in the initrd")
        XCTAssertFalse(entries.contains { $0.path.hasPrefix("etc/ssh/ssh_host_") })
        let paths = Set(entries.map(\.path))
        for p in ["init", "usr/sbin/nxc-agent", "usr/lib/systemd/system/nxc-agent.service",
                  "usr/share/nxc/roles/server/var/www/html/index.html", "etc/nxc/composition.json"] {
            XCTAssertTrue(paths.contains(p), "initrd lacks \(p)")
        }

        // A start that times out names the nodes and their console logs, and stop cleans it up.
        let early = try run(["start", "-f", "vm-ramdisk", "--timeout", "2", "-r", "client=1", comp], timeout: 120)
        XCTAssertNotEqual(early.status, 0)
        XCTAssertTrue(early.output.contains("did not come up: client, server") || early.output.contains("did not come up: server, client"), early.output)
        XCTAssertTrue(early.output.contains(".nxc/run/webserver.vm-ramdisk/server.console.log"), early.output)
        XCTAssertEqual(try run(["stop"], timeout: 120).status, 0)

        let start = try run(["start", "-f", "vm-ramdisk", "--timeout", "420", comp], timeout: 600)
        XCTAssertEqual(start.status, 0, start.output)
        let doc = try Deployment.load(path: project + "/deploy/webserver.vm-ramdisk.json")
        XCTAssertEqual(doc.order, ["server", "client1", "client2"])
        let state = try XCTUnwrap(RuntimeState.load(from: project + "/.nxc/run/webserver.vm-ramdisk"))
        let pids = state.processes.map(\.pid)
        let ports = doc.nodes.values.compactMap { $0.ssh?.port }
        XCTAssertEqual(ports.count, 3)
        guard start.status == 0 else { return }

        for (node, role) in [("server", "server"), ("client1", "client"), ("client2", "client")] {
            let h = try execOn(node, ["hostname"])
            XCTAssertEqual(h.status, 0)
            XCTAssertEqual(h.output.trimmingCharacters(in: .whitespacesAndNewlines), node)
            let r = try execOn(node, ["cat", "/etc/nxc/role"])
            XCTAssertEqual(r.output.trimmingCharacters(in: .whitespacesAndNewlines), role)
        }
        let page = try execOn("client1", ["curl", "-sf", "http://server/"])
        XCTAssertEqual(page.status, 0)
        XCTAssertEqual(page.output, "hello from nxc\n")
        XCTAssertEqual(try execOn("server", ["systemctl", "is-active", "nginx"]).status, 0)
        // nginx is installed in the image of every role but runs on the server only.
        let onClients = try execOn("client", ["systemctl", "is-active", "nginx"])
        XCTAssertNotEqual(onClients.status, 0)
        XCTAssertTrue(onClients.output.contains("client1: ") && onClients.output.contains("client2: "), onClients.output)
        XCTAssertNotEqual(try execOn("client1", ["pgrep", "-x", "nginx"]).status, 0)
        // A role runs on all its nodes; the exit status is the worst one.
        let both = try execOn("client", ["cat", "/etc/hostname"])
        XCTAssertEqual(both.status, 0)
        XCTAssertTrue(both.output.contains("client1: client1") && both.output.contains("client2: client2"), both.output)
        XCTAssertEqual(try execOn("client", ["sh", "-c", "test $(hostname) = client1"]).status, 1)
        // Arguments reach the node as given (quoted once for the remote shell).
        XCTAssertEqual(try execOn("server", ["printf", "%s|", "a b", "$HOME", "it's"]).output, "a b|$HOME|it's|")

        let status = try run(["status", "--json"])
        XCTAssertEqual(status.status, 0)
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(status.output.utf8)) as? [String: Any])
        let states = (json["nodes"] as? [[String: Any]])?.compactMap { $0["state"] as? String }
        XCTAssertEqual(states, ["running", "running", "running"])

        // The composition's test script through nxc driver, the same one the docker test runs.
        let driven = try run(["driver"], timeout: 300)
        XCTAssertEqual(driven.status, 0, driven.output)
        XCTAssertTrue(driven.output.contains("client1: hello from nxc") && driven.output.contains("driver: 2 step(s) passed"), driven.output)

        // connect with several nodes: a tmux session with one pane per node.
        let session = "nxc-e2e-\(getpid())"
        let conn = try Command.status([nxc, "connect", "--project", project, "--detach", "--session", session],
                                      environment: env, timeout: 60)
        XCTAssertEqual(conn.0, 0, conn.1)
        let panes = try Command.status(["tmux", "list-panes", "-t", session, "-F", "#{pane_title}"], timeout: 10)
        XCTAssertEqual(panes.1.split(separator: "\n").map(String.init).sorted(), ["client1", "client2", "server"])
        // Each pane is a shell on its node: type into it, read the screen back.
        try assertPanesAreShells(session: session, nameCommand: "cat /etc/nxc/hostname", timeout: 60)
        _ = try? Command.status(["tmux", "kill-session", "-t", session], timeout: 10)

        // The deployment's secret: on the node root's only, in the run folder the user's only; gone at stop.
        let secret = project + "/.nxc/run/webserver.vm-ramdisk/secret"
        let mode = (try FileManager.default.attributesOfItem(atPath: secret)[.posixPermissions] as? NSNumber)?.intValue
        XCTAssertEqual(mode, 0o600)
        XCTAssertEqual(try execOn("server", ["stat", "-c", "%a %U", "/run/nxc/secret"]).output.trimmingCharacters(in: .whitespacesAndNewlines), "600 root")
        let stop = try run(["stop"], timeout: 120)
        XCTAssertEqual(stop.status, 0, stop.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: secret), "the secret outlived the deployment")
        for pid in pids { XCTAssertFalse(Processes.isAlive(pid), "PID \(pid) still runs after stop") }
        for port in ports { XCTAssertFalse(Processes.portInUse(port), "port \(port) still in use after stop") }
    }

    /// Build-time errors name the composition entry: an unknown package, a service no package provides.
    func testBuildErrorsNameTheEntry() throws {
        let dir = project + "/bad"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try Data("roles:\n  server:\n    packages: [curl, nxc-no-such-package]\n".utf8)
            .write(to: URL(fileURLWithPath: dir + "/composition.yaml"))
        let r = try run(["build", "-f", "vm-ramdisk", dir], timeout: 1800)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.output.contains("composition.yaml:3:"), r.output)
        XCTAssertTrue(r.output.contains("nxc-no-such-package"), r.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: project + "/build/bad/vm-ramdisk"), "nothing half-written")

        try Data("roles:\n  server:\n    packages: [curl]\n    services: [nginx]\n".utf8)
            .write(to: URL(fileURLWithPath: dir + "/composition.yaml"))
        let s = try run(["build", "-f", "vm-ramdisk", dir], timeout: 1800)
        XCTAssertNotEqual(s.status, 0)
        XCTAssertTrue(s.output.contains("composition.yaml:4:") && s.output.contains("the systemd unit 'nginx.service'"), s.output)
    }
}
