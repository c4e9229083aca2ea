import Foundation
import XCTest
@testable import NXCComposition
@testable import NXCDeploy
@testable import NXCDeployment
@testable import NXCFlavours

/// launch.sh and launch-NODE.sh: golden files, and the scripts run for real with a stub QEMU.
final class LaunchScriptTests: XCTestCase {
    func testGoldenFiles() throws {
        let c = try Hostile.webserver()
        let plain = try Flavour.load(path: DeployTests.repo + "/flavours/vm-ramdisk.yaml")
        try GoldenFile.check(LaunchScript.generic(composition: c, flavour: plain), named: "webserver.vm-ramdisk.launch.sh")
        try GoldenFile.check(LaunchScript.generic(composition: c, flavour: try Hostile.flavour("vm-ramdisk")),
                             named: "hostile.vm-ramdisk.launch.sh")
        try GoldenFile.check(LaunchScript.perNode(node: "client2", index: 3, memory: 512), named: "webserver.vm-ramdisk.launch-client2.sh")
    }

    /// The scripts as `nxc build` writes them, run from a folder whose name a shell would mangle,
    /// with stub `qemu-system-x86_64` and `base64`: QEMU gets exactly the argv meant (kernel
    /// parameters verbatim, QEMU option values with their commas doubled), and nothing hostile ran.
    func testRunPassesEveryValueLiterally() throws {
        let work = try Hostile.scratch()
        defer { try? FileManager.default.removeItem(atPath: work) }
        let stubs = work + "/stubs"
        try FileManager.default.createDirectory(atPath: stubs, withIntermediateDirectories: true)
        try Hostile.recorder("qemu-system-x86_64", in: stubs)
        try Hostile.recorder("base64", in: stubs, thenPrint: "REVQTE9ZTUVOVA==")
        let project = work + "/" + Hostile.folderName
        let build = project + "/build"
        let run = project + "/run"
        for d in [build, run] { try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true) }
        let flavour = try Hostile.flavour("vm-ramdisk")
        _ = try QemuStart().prepare(buildDirectory: build, composition: try Hostile.webserver(), flavour: flavour)

        let env = ["PATH": stubs + ":/usr/bin:/bin", "HOME": work,
                   "NXC_INDEX": "2", "NXC_MEMORY": "777", "NXC_SSH_PORT": "10023",
                   "NXC_DEPLOYMENT": run + "/deployment.json", "NXC_SWITCH": run + "/switch",
                   "NXC_CONSOLE": run + "/server.console.log", "NXC_PIDFILE": run + "/server.pid"]
        let (status, out) = try ScriptRun.run([build + "/launch-server.sh"], environment: env, directory: work)
        XCTAssertEqual(status, 0, out)
        XCTAssertEqual(Hostile.calls("base64", in: stubs), [["-w0", run + "/deployment.json"]])
        let expected = [
            "-name", "nxc-server", "-machine", "pc", "-accel", "tcg,tb-size=128", "-cpu", "max", "-smp", "1", "-m", "777",
            "-no-reboot", "-nodefaults", "-kernel", build + "/kernel", "-initrd", build + "/initrd",
            "-append", Hostile.kernelParams.joined(separator: " ") + " nxc.host=server nxc.deployment=REVQTE9ZTUVOVA==",
            "-netdev", "user,id=user,restrict=on,hostfwd=tcp:127.0.0.1:10023-:22",
            "-device", "virtio-net-pci,netdev=user,mac=52:54:00:78:00:02", "-device", "virtio-rng-pci",
            "-netdev", "vde,id=private,sock=" + (run + "/switch").replacingOccurrences(of: ",", with: ",,"),
            "-device", "virtio-net-pci,netdev=private,mac=52:54:00:77:00:02",
            "-display", "none", "-serial", "file:" + run + "/server.console.log", "-daemonize", "-pidfile", run + "/server.pid",
        ]
        let calls = Hostile.calls("qemu-system-x86_64", in: stubs)
        XCTAssertEqual(calls.count, 1, out)
        XCTAssertEqual(calls.first ?? [], expected)
        XCTAssertEqual(Hostile.pwned(under: work), [], "a hostile value ran as a command")
    }

    /// A value that is not a number where the script does arithmetic is refused, not evaluated.
    func testRunRefusesNonNumericSettings() throws {
        let work = try Hostile.scratch()
        defer { try? FileManager.default.removeItem(atPath: work) }
        let stubs = work + "/stubs"
        try FileManager.default.createDirectory(atPath: stubs, withIntermediateDirectories: true)
        try Hostile.recorder("qemu-system-x86_64", in: stubs)
        try Hostile.recorder("base64", in: stubs, thenPrint: "eA==")
        let build = work + "/build"
        try FileManager.default.createDirectory(atPath: build, withIntermediateDirectories: true)
        _ = try QemuStart().prepare(buildDirectory: build, composition: try Hostile.webserver(), flavour: try Hostile.flavour("vm-ramdisk"))
        for (key, value) in [("NXC_INDEX", "1+1"), ("NXC_SSH_PORT", "22,hostfwd=tcp::2222-:22"), ("NXC_MEMORY", "1G")] {
            let env = ["PATH": stubs + ":/usr/bin:/bin", "NXC_NODE": "server", key: value]
            let (status, out) = try ScriptRun.run([build + "/launch.sh"], environment: env, directory: work)
            XCTAssertNotEqual(status, 0, "\(key)=\(value): \(out)")
            XCTAssertTrue(out.contains(key), "\(key)=\(value): the error names the variable: \(out)")
        }
        XCTAssertEqual(Hostile.calls("qemu-system-x86_64", in: stubs), [])
    }

    /// Names only reach comments, and a comment cannot be ended early by a newline in a name.
    func testNamesCannotLeaveTheirComment() throws {
        var flavour = try Hostile.flavour("vm-ramdisk")
        flavour.name = "evil\ntouch pwned-name\n#"
        let script = LaunchScript.generic(composition: try Hostile.webserver(), flavour: flavour)
        XCTAssertFalse(script.split(separator: "\n").contains { $0.hasPrefix("touch") }, script)
    }
}

/// Runs a generated script (argv[0] an absolute path) in a given folder with a given environment (the scripts write relative
/// `pwned-*` files there if a hostile value is ever evaluated).
enum ScriptRun {
    static func run(_ argv: [String], environment: [String: String], directory: String,
                    timeout: Double = 30) throws -> (Int32, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: argv[0])
        p.arguments = Array(argv.dropFirst())
        p.environment = environment
        p.currentDirectoryURL = URL(fileURLWithPath: directory)
        p.standardInput = FileHandle.nullDevice
        let log = directory + "/.script-\(UUID().uuidString.prefix(6)).log"
        FileManager.default.createFile(atPath: log, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: log) }
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        p.standardOutput = h
        p.standardError = h
        try p.run()
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { usleep(20_000) }
        if p.isRunning { p.terminate(); p.waitUntilExit() }
        try h.close()
        let out = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        return (p.terminationStatus, out)
    }
}
