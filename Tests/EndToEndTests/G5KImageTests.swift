import Foundation
import XCTest
import NXCArchive
import NXCBuild
import NXCDeploy
import NXCDeployment
import NXCStore

/// g5k-image end to end: the tarball and Kadeploy environment of compositions/webserver; a stand-in
/// kadeploy3 (Fixtures/kadeploy, on PATH) writes the image to QEMU VMs' disks and boots them with the
/// image's own kernel and initramfs (root=/dev/vda), as Kadeploy does to reserved nodes; nxc then
/// contextualises them over SSH. A third host is reported failed by Kadeploy. Runs when NXC_E2E=1.
/// (Two empty-store builds giving the same tarball: ReproducibilityTests, with the other flavours.)
final class G5KImageTests: XCTestCase {
    static let repo = VMRamdiskTests.repo
    var nxc: String { ProcessInfo.processInfo.environment["NXC_BIN"] ?? Self.repo + "/.build/release/nxc" }
    var project = ""
    var state: String { project + "/kadeploy-state" }

    override func setUpWithError() throws {
        try XCTSkipUnless(ProcessInfo.processInfo.environment["NXC_E2E"] == "1", "set NXC_E2E=1 to run the end-to-end tests")
        project = NSTemporaryDirectory() + "nxc-g5kimage-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: project, withIntermediateDirectories: true)
    }

    override func tearDown() {
        guard !project.isEmpty else { return }
        // Every VM and switch the stand-in started, by the PIDs it wrote.
        for f in (try? FileManager.default.contentsOfDirectory(atPath: state)) ?? [] where f.hasSuffix(".pid") {
            if let t = try? String(contentsOfFile: state + "/" + f, encoding: .utf8), let pid = Int32(t.trimmingCharacters(in: .whitespacesAndNewlines)) {
                XCTAssertTrue(Processes.stop(pid), "PID \(pid) (\(f)) did not stop")
            }
        }
        try? FileManager.default.removeItem(atPath: project)
    }

    /// The stand-in kadeploy3 first on PATH, its state folder in the project.
    var session: NxcSession {
        NxcSession(nxc: nxc, project: project, extra: [
            "PATH": Self.repo + "/Tests/EndToEndTests/Fixtures/kadeploy:" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"),
            "NXC_FAKE_KADEPLOY_STATE": state])
    }
    func env(_ more: [String: String] = [:]) -> [String: String] { session.environment(more) }

    @discardableResult
    func nxcRun(_ args: [String], timeout: Double = 1800, extra: [String: String] = [:]) throws -> (status: Int32, output: String) {
        try session.run(args, timeout: timeout, env: extra)
    }

    func execOn(_ target: String, _ command: [String]) throws -> (status: Int32, output: String) {
        try session.exec(target, command)
    }

    func testKadeployAndContextualiseWebserver() throws {
        let web = Self.repo + "/compositions/webserver"
        let b = try nxcRun(["build", "-f", "g5k-image", web], timeout: 2400)
        XCTAssertEqual(b.status, 0, b.output)
        let dir = project + "/build/webserver/g5k-image"
        for f in ["webserver.tar.zst", "webserver.env.yaml", "SHA256SUMS", "manifest.json"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/" + f), "missing \(f)")
        }
        try assertManifestListsEveryFile(dir, generated: [])
        let envText = try String(contentsOfFile: dir + "/webserver.env.yaml", encoding: .utf8)
        for line in ["kind: tar", "compression: zstd", "filesystem: ext4", "partition_type: 131", "multipart: false",
                     "file: \"./webserver.tar.zst\"", "author: \"nxc\"", "g5k-postinstall"] {
            XCTAssertTrue(envText.contains(line), "env lacks \(line):\n\(envText)")
        }
        let sums = try String(contentsOfFile: dir + "/SHA256SUMS", encoding: .utf8)
        XCTAssertTrue(sums.contains("\(try sha256(file: dir + "/webserver.tar.zst"))  webserver.tar.zst"), sums)
        // The tarball: fixed times, numeric owners, the kernel, the initramfs and the agent inside.
        let entries = try ArchiveReader.entries(path: dir + "/webserver.tar.zst", withData: false)
        XCTAssertTrue(entries.allSatisfy { $0.mtime == 0 })
        let names = Set(entries.map(\.path))
        XCTAssertTrue(names.contains { $0.hasPrefix("boot/vmlinuz-") })
        XCTAssertTrue(names.contains { $0.hasPrefix("boot/initrd.img-") })
        XCTAssertTrue(names.contains("usr/sbin/nxc-agent"))
        XCTAssertTrue(names.contains("usr/sbin/nginx"))
        XCTAssertFalse(names.contains { $0.hasPrefix("etc/ssh/ssh_host_") }, "no host key in the image")

        let p1 = try Processes.freePort(), p2 = try Processes.freePort(), p3 = try Processes.freePort()
        let machines = project + "/machines"
        try Data("127.0.0.1:\(p1)\n127.0.0.1:\(p1)\n127.0.0.1:\(p2)\n127.0.0.1:\(p3)\n".utf8).write(to: URL(fileURLWithPath: machines))
        let s = try nxcRun(["start", "-f", "g5k-image", "-m", machines, "--timeout", "900", web], timeout: 1500,
                           extra: ["NXC_FAKE_KADEPLOY_FAIL": "127.0.0.1:\(p3)"])
        XCTAssertNotEqual(s.status, 0, "the third host failed")
        XCTAssertTrue(s.output.contains("client2 on 127.0.0.1:\(p3)"), s.output)
        XCTAssertTrue(s.output.contains("Kadeploy failed to deploy it"), s.output)
        XCTAssertEqual(RuntimeState.load(from: project + "/.nxc/run/webserver.g5k-image")?.startMethod, "kadeploy",
                       "the state names the method that wrote it")
        for (node, role) in [("server", "server"), ("client1", "client")] {
            XCTAssertEqual(try execOn(node, ["hostname"]).output, node)
            XCTAssertEqual(try execOn(node, ["cat", "/etc/nxc/role"]).output, role)
        }
        XCTAssertEqual(try execOn("client1", ["curl", "-sf", "http://server/"]).output, "hello from nxc")
        XCTAssertEqual(try execOn("server", ["systemctl", "is-active", "nginx"]).status, 0)
        XCTAssertNotEqual(try execOn("client1", ["systemctl", "is-active", "nginx"]).status, 0)
        // Booted from the disk Kadeploy wrote, with the image's own kernel and initramfs.
        XCTAssertEqual(try execOn("server", ["findmnt", "-n", "-o", "SOURCE", "/"]).output, "/dev/vda")
        XCTAssertEqual(try execOn("server", ["sh", "-c", "test -f /boot/initrd.img-$(uname -r) && echo yes"]).output, "yes")
        // The composition's test script, unchanged, through nxc driver (-r client=1 on the hosts that are up).
        let script = project + "/test.sh"
        try Data("nxc exec server -- systemctl is-active nginx\nnxc exec client1 -- curl -sf http://server/\n".utf8).write(to: URL(fileURLWithPath: script))
        let driven = try nxcRun(["driver", script], timeout: 300)
        XCTAssertEqual(driven.status, 0, driven.output)
        // One node: the output is the command's own, without a node prefix.
        XCTAssertTrue(driven.output.contains("\nhello from nxc"), driven.output)
        XCTAssertFalse(driven.output.contains("client1: hello from nxc"), driven.output)
    }
}
