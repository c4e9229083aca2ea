import Foundation
import XCTest
import NXCBuild
import NXCDeploy
import NXCDeployment
import NXCStore
import NXCTestbed
import NXCFlavours

/// g5k-ramdisk end to end: two QEMU VMs (a stock Debian with sshd and kexec-tools, built with
/// nxc's vm-ramdisk flavour) play the reserved hosts, and ports where nothing answers others (a
/// spare takes the first one's node in the dry run; the role's min lets it go on without the next);
/// nxc kexecs them into compositions/webserver.
/// Only QEMU guests are ever kexec'd. Runs when NXC_E2E=1.
final class G5KRamdiskTests: XCTestCase {
    static let repo = VMRamdiskTests.repo
    var nxc: String { ProcessInfo.processInfo.environment["NXC_BIN"] ?? Self.repo + "/.build/release/nxc" }
    var project = ""

    override func setUpWithError() throws {
        try XCTSkipUnless(ProcessInfo.processInfo.environment["NXC_E2E"] == "1", "set NXC_E2E=1 to run the end-to-end tests")
        project = NSTemporaryDirectory() + "nxc-g5k-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: project, withIntermediateDirectories: true)
    }

    override func tearDown() {
        guard !project.isEmpty else { return }
        _ = try? nxcRun(["stop", "-f", "vm-ramdisk", "--composition", "stockhost"], timeout: 120)
        try? FileManager.default.removeItem(atPath: project)
    }

    var session: NxcSession { NxcSession(nxc: nxc, project: project) }

    @discardableResult
    func nxcRun(_ args: [String], timeout: Double = 900, extraEnv: [String: String] = [:]) throws -> (status: Int32, output: String) {
        try session.run(args, timeout: timeout, env: extraEnv)
    }

    func execOn(_ target: String, _ command: [String]) throws -> (status: Int32, output: String) {
        try session.exec(target, command)
    }

    func testKexecHostsIntoWebserver() throws {
        let web = Self.repo + "/compositions/webserver"
        let stock = Self.repo + "/Tests/EndToEndTests/Fixtures/stockhost"
        XCTAssertEqual(try nxcRun(["build", "-f", "g5k-ramdisk", web], timeout: 2400).status, 0)
        let bundle = project + "/build/webserver/g5k-ramdisk"
        for f in ["kernel", "initrd", "kexec.sh", "manifest.json"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: bundle + "/" + f), "missing \(f)")
        }
        let manifest = try String(contentsOfFile: bundle + "/manifest.json", encoding: .utf8)
        XCTAssertTrue(manifest.contains(try sha256(file: bundle + "/initrd")), "manifest has the initrd's SHA-256")
        try assertManifestListsEveryFile(bundle, generated: ["kexec.sh"])
        XCTAssertEqual(try nxcRun(["build", "-f", "vm-ramdisk", stock], timeout: 2400).status, 0)

        // The hosts: guestfwd lets them reach nxc's HTTP server at 10.0.2.100 (for the HTTP run).
        let httpPort = try Processes.freePort()
        let fwd = "tcp:10.0.2.100:\(httpPort)-cmd:nc 127.0.0.1 \(httpPort)"
        // The two hosts only: nfs-store's store host and its NFS are tested by PxeTests (pxe-nfs-store).
        let hosts = try nxcRun(["start", "-f", "vm-ramdisk", "-r", "store=0", "--timeout", "420", stock], timeout: 600,
                               extraEnv: ["NXC_GUESTFWD": fwd])
        XCTAssertEqual(hosts.status, 0)
        guard hosts.status == 0 else { return }
        let stockDoc = try Deployment.load(path: project + "/deploy/stockhost.vm-ramdisk.json")
        let ports = stockDoc.order.filter { stockDoc.nodes[$0]?.role == "host" }.compactMap { stockDoc.nodes[$0]?.ssh?.port }
        XCTAssertEqual(ports.count, 2)
        let dead = try Processes.freePort()

        // A dry run checks and pushes, and changes nothing. Two hosts of the file do not answer: the
        // host beyond the nodes is a spare and takes the first one's node; for the second no spare is
        // left, and its role goes on without it (min 1).
        let all = project + "/machines-all"
        let (dead1, dead2) = (try Processes.freePort(), try Processes.freePort())
        try Data("root@127.0.0.1:\(ports[0])\nroot@127.0.0.1:\(dead1)\nroot@127.0.0.1:\(dead2)\nroot@127.0.0.1:\(ports[1])\n".utf8)
            .write(to: URL(fileURLWithPath: all))
        let dry = try nxcRun(["start", "-f", "g5k-ramdisk", "-m", all, "--dry-run", "-r", "client=2,min=1", "--retries", "1", web], timeout: 600)
        XCTAssertEqual(dry.status, 0, dry.output)
        XCTAssertTrue(dry.output.contains("dry run: 2 host(s) checked and ready; nothing was kexec'd"), dry.output)
        XCTAssertTrue(dry.output.contains("root@127.0.0.1:\(dead1): connect: unreachable over SSH"), dry.output)
        XCTAssertTrue(dry.output.contains("root@127.0.0.1:\(ports[1]): spare, takes client1 (role client) from root@127.0.0.1:\(dead1), "
                                          + "whose connect failed"), dry.output)
        XCTAssertTrue(dry.output.contains("client2 is left out: root@127.0.0.1:\(dead2) failed"), dry.output)
        XCTAssertTrue(dry.output.contains("role client runs 1 node(s), its min is 1"), dry.output)
        // The report: each host, its phases and tries, what it received and from where.
        let report = try TestbedReport.load(path: project + "/deploy/webserver.g5k-ramdisk.report.json")
        XCTAssertTrue(report.dryRun)
        let byHost = Dictionary(uniqueKeysWithValues: report.hosts.map { ($0.host, $0) })
        let gone = try XCTUnwrap(byHost["root@127.0.0.1:\(dead1)"])
        XCTAssertEqual([gone.state, gone.errorClass?.rawValue, gone.replacedBy], ["replaced", "unreachable", "root@127.0.0.1:\(ports[1])"])
        XCTAssertEqual(gone.phases.map(\.attempts), [2], "--retries 1: two tries")
        XCTAssertEqual(byHost["root@127.0.0.1:\(dead2)"]?.state, "failed")
        XCTAssertEqual(report.missing, [.init(node: "client2", role: "client", running: 1, minimum: 1)])
        let bundleBytes = try ["kernel", "initrd", "kexec.sh"].reduce(0) {
            $0 + (try FileManager.default.attributesOfItem(atPath: bundle + "/" + $1)[.size] as? Int ?? 0)
        }
        for (port, node) in [(ports[0], "server"), (ports[1], "client1")] {
            let h = try XCTUnwrap(byHost["root@127.0.0.1:\(port)"])
            XCTAssertEqual([h.node, h.state], [node, "ready"])
            XCTAssertEqual(h.bytesReceived, bundleBytes)
            XCTAssertTrue(h.receivedFrom.hasPrefix("relay"), h.receivedFrom)
            XCTAssertEqual(h.phases.map(\.phase), [.connect, .facts, .transfer])
        }
        XCTAssertEqual(byHost["root@127.0.0.1:\(ports[1])"]?.replaces, "root@127.0.0.1:\(dead1)")
        // The two hosts pass the bundle on to each other (over their private network), fed once from here.
        XCTAssertTrue(dry.output.contains("relay: kernel, initrd, kexec.sh to 2 host(s) in a chain, fed once from here"), dry.output)
        XCTAssertTrue(dry.output.contains("relay: 2 of 2 host(s) have it"), dry.output)
        XCTAssertEqual(dry.output.components(separatedBy: "checked (kernel, initrd, kexec.sh through the relay chain)").count - 1, 2, dry.output)
        XCTAssertTrue(dry.output.contains("bundle: 2 host(s) through the relay chain, 0 copied it from the shared folder, 0 got files over SSH"), dry.output)
        // The stock hosts, over SSH with the project's key (they are nodes of the stockhost composition).
        func onStock(_ port: Int, _ command: String) throws -> (Int32, String) {
            let (st, out) = try Command.status(["ssh", "-i", project + "/.nxc/id_ed25519", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
                                                "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-p", String(port),
                                                "root@127.0.0.1", command], timeout: 60)
            return (st, out.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        XCTAssertEqual(try onStock(ports[0], "hostname").1, "host1")

        // OAR-style file (repeats), a third host unreachable: client2 is left out (min 1). The second
        // host's kexec does nothing (/bin/true in its place, as a host whose kexec_load is refused):
        // it still answers as its old system, so its node is named down well before the timeout,
        // while server comes up.
        let machines = project + "/machines"
        try Data("# OAR_NODEFILE\nroot@127.0.0.1:\(ports[0])\nroot@127.0.0.1:\(ports[0])\nroot@127.0.0.1:\(ports[1])\nroot@127.0.0.1:\(dead)\n".utf8)
            .write(to: URL(fileURLWithPath: machines))
        XCTAssertEqual(try onStock(ports[1], "mount --bind /bin/true \"$(command -v kexec)\"").0, 0)
        let t0 = Date()
        let first = try nxcRun(["start", "-f", "g5k-ramdisk", "-m", machines, "-r", "client=2,min=1", "--timeout", "300", web], timeout: 900)
        XCTAssertNotEqual(first.status, 0)
        XCTAssertLessThan(Date().timeIntervalSince(t0), 300, "the host that did not kexec is named before the timeout")
        XCTAssertTrue(first.output.contains("client2 is left out: root@127.0.0.1:\(dead) failed"), first.output)
        XCTAssertTrue(first.output.contains("client1 on root@127.0.0.1:\(ports[1])"), first.output)
        XCTAssertTrue(first.output.contains("still runs its old system"), first.output)
        XCTAssertTrue(first.output.contains("deployment: inline on the kernel command line"), first.output)
        // The node that came up still gets the deployment's secret.
        XCTAssertTrue(first.output.contains("the deployment's secret: sent to 1 node(s)"), first.output)
        let firstReport = try TestbedReport.load(path: project + "/deploy/webserver.g5k-ramdisk.report.json")
        let broken = try XCTUnwrap(firstReport.hosts.first { $0.host == "root@127.0.0.1:\(ports[1])" })
        XCTAssertEqual([broken.state, broken.errorClass?.rawValue, broken.phases.last?.phase.rawValue], ["failed", "kexec", "boot"])

        // The host's kexec works again: --resume redoes client1 alone, with the document server holds.
        XCTAssertEqual(try onStock(ports[1], "umount \"$(command -v kexec)\"").0, 0)
        let resumed = try nxcRun(["start", "-f", "g5k-ramdisk", "-m", machines, "--resume", "--timeout", "300", web], timeout: 900)
        XCTAssertEqual(resumed.status, 0, resumed.output)
        XCTAssertTrue(resumed.output.contains("resume: 1 node(s) still up from the last start; to redo: client1 on root@127.0.0.1:\(ports[1])"),
                      resumed.output)
        XCTAssertTrue(resumed.output.contains("the deployment's secret: sent to 2 node(s)"), resumed.output)
        XCTAssertEqual(try TestbedReport.load(path: project + "/deploy/webserver.g5k-ramdisk.report.json").hosts
                        .first { $0.host == "root@127.0.0.1:\(ports[1])" }?.state, "up")
        for (node, role) in [("server", "server"), ("client1", "client")] {
            XCTAssertEqual(try execOn(node, ["hostname"]).output, node)
            XCTAssertEqual(try execOn(node, ["cat", "/etc/nxc/role"]).output, role)
        }
        XCTAssertEqual(try execOn("client1", ["curl", "-sf", "http://server/"]).output, "hello from nxc")
        XCTAssertEqual(try execOn("server", ["systemctl", "is-active", "nginx"]).status, 0)
        XCTAssertNotEqual(try execOn("client1", ["systemctl", "is-active", "nginx"]).status, 0)
        // One secret for both: the node redone got the one server already had.
        XCTAssertEqual(try execOn("server", ["nxc-agent", "secret", "derive", "t"]).output,
                       try execOn("client1", ["nxc-agent", "secret", "derive", "t"]).output)

        // An edit of a role's file only (the page), rebuilt: the initrd's system segment is the same.
        let edited = project + "/webserver"
        try FileManager.default.copyItem(atPath: web, toPath: edited)
        try Data("hello again from nxc\n".utf8).write(to: URL(fileURLWithPath: edited + "/index.html"))
        XCTAssertEqual(try nxcRun(["build", "-f", "g5k-ramdisk", edited], timeout: 600).status, 0)
        let payloadSize = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: bundle + "/initrd.payload")[.size] as? Int)
        XCTAssertLessThan(payloadSize, 4 << 20, "the payload segment is small")

        // Again on the same hosts, now nodes (--reuse), another distribution, document over HTTP.
        let two = project + "/machines-two"
        try Data("root@127.0.0.1:\(ports[0])\nroot@127.0.0.1:\(ports[1])\n".utf8).write(to: URL(fileURLWithPath: two))
        let second = try nxcRun(["start", "-f", "g5k-ramdisk", "-m", two, "--reuse", "-r", "client=1", "--deploy-via", "http",
                                 "--http-address", "10.0.2.100", "--http-listen", "127.0.0.1", "--http-port", String(httpPort),
                                 "--timeout", "300", edited], timeout: 900)
        XCTAssertEqual(second.status, 0)
        XCTAssertTrue(second.output.contains("deployment: over HTTP (--deploy-via http)"), second.output)
        // Each node kexecs into its own kernel (kept in the image) and its own initrd's system segment
        // (kept in memory) joined to the new payload segment: only that and kexec.sh go over SSH.
        XCTAssertEqual(second.output.components(separatedBy: "pushed initrd.payload, kexec.sh over SSH; kernel and the initrd's system "
                                                + "segment from the node itself, the new payload segment joined to it").count - 1, 2, second.output)
        XCTAssertTrue(second.output.contains("got files over SSH"), second.output)
        // Kilobytes: two payload segments (under 1 KiB each here) and two kexec.sh.
        XCTAssertNotNil(second.output.range(of: #"2 got files over SSH, 0 had it \([0-9.]+ KiB sent from here\)"#, options: .regularExpression),
                        second.output)
        XCTAssertTrue(second.output.contains("HTTP: server fetched") && second.output.contains("HTTP: client fetched"), second.output)
        XCTAssertEqual(try execOn("client", ["hostname"]).output, "client")
        XCTAssertEqual(try execOn("client", ["curl", "-sf", "http://server/"]).output, "hello again from nxc")
        XCTAssertEqual(try execOn("server", ["cat", "/etc/nxc/role"]).output, "server")
        // The webserver test script, unchanged, through nxc driver on the kexec'd nodes.
        let script = project + "/test.sh"
        try Data("nxc exec server -- systemctl is-active nginx\nnxc exec client -- curl -sf http://server/\n".utf8)
            .write(to: URL(fileURLWithPath: script))
        let driven = try nxcRun(["driver", script], timeout: 300)
        XCTAssertEqual(driven.status, 0, driven.output)
        // One node: the output is the command's own, without a node prefix.
        XCTAssertTrue(driven.output.contains("\nhello again from nxc"), driven.output)
        XCTAssertFalse(driven.output.contains("client: hello again from nxc"), driven.output)

        // A host lost after the transfer: the client's host now stops dead at its kexec (kexec does
        // nothing there). A one-node start (server alone, client=0) binds server to it, with the
        // other host as the spare: the spare takes server after the kexec, is given the bundle and
        // kexec'd with the document made again; the report names the host lost and the phase.
        XCTAssertEqual(try execOn("client", ["sh", "-c", "mount --bind /bin/true \"$(command -v kexec)\""]).status, 0)
        let lost = project + "/machines-lost"
        try Data("root@127.0.0.1:\(ports[1])\nroot@127.0.0.1:\(ports[0])\n".utf8).write(to: URL(fileURLWithPath: lost))
        let spared = try nxcRun(["start", "-f", "g5k-ramdisk", "-m", lost, "--reuse", "-r", "client=0", "--timeout", "300", edited], timeout: 900)
        XCTAssertEqual(spared.status, 0, spared.output)
        XCTAssertTrue(spared.output.contains("root@127.0.0.1:\(ports[1]): still runs its old system"), spared.output)
        XCTAssertTrue(spared.output.contains("root@127.0.0.1:\(ports[0]): spare, takes server (role server) from root@127.0.0.1:\(ports[1]), "
                                             + "whose boot failed"), spared.output)
        XCTAssertTrue(spared.output.contains("deployment: made again with the spares"), spared.output)
        let sparedReport = try TestbedReport.load(path: project + "/deploy/webserver.g5k-ramdisk.report.json")
        let lostHost = try XCTUnwrap(sparedReport.hosts.first { $0.host == "root@127.0.0.1:\(ports[1])" })
        XCTAssertEqual([lostHost.state, lostHost.replacedBy, lostHost.phases.last?.phase.rawValue],
                       ["replaced", "root@127.0.0.1:\(ports[0])", "boot"])
        XCTAssertEqual(sparedReport.hosts.first { $0.host == "root@127.0.0.1:\(ports[0])" }?.state, "up")
        XCTAssertEqual(try execOn("server", ["hostname"]).output, "server")
        XCTAssertEqual(try Deployment.load(path: project + "/deploy/webserver.g5k-ramdisk.json").nodes["server"]?.ssh?.port, ports[0])

        XCTAssertEqual(try nxcRun(["stop", "-f", "g5k-ramdisk", "--composition", "webserver"]).status, 0)
        let state = RuntimeState.load(from: project + "/.nxc/run/stockhost.vm-ramdisk")
        XCTAssertEqual(try nxcRun(["stop", "-f", "vm-ramdisk", "--composition", "stockhost"], timeout: 120).status, 0)
        for p in state?.processes ?? [] { XCTAssertFalse(Processes.isAlive(p.pid), "PID \(p.pid) still runs") }
    }
}
