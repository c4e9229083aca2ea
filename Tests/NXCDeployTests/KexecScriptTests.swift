import Foundation
import XCTest
@testable import NXCComposition
@testable import NXCDeploy
@testable import NXCDeployment
@testable import NXCFlavours

/// kexec.sh: golden files, and the script run for real with a stub kexec.
final class KexecScriptTests: XCTestCase {
    func testGoldenFiles() throws {
        let c = try Hostile.webserver()
        let plain = try Flavour.load(path: DeployTests.repo + "/flavours/g5k-ramdisk.yaml")
        try GoldenFile.check(KexecScript.text(composition: c, flavour: plain), named: "webserver.g5k-ramdisk.kexec.sh")
        try GoldenFile.check(KexecScript.text(composition: c, flavour: try Hostile.flavour("g5k-ramdisk")),
                             named: "hostile.g5k-ramdisk.kexec.sh")
    }

    /// A bundle folder as `nxc build` writes it, under a name a shell would mangle; kexec gets the
    /// kernel parameters verbatim, then `kexec -e` runs in the background; nothing hostile ran.
    func testRunPassesTheCommandLineLiterally() throws {
        let (work, stubs, bundle) = try bundleFolder()
        defer { try? FileManager.default.removeItem(atPath: work) }
        let env = ["PATH": stubs + ":/usr/bin:/bin", "NXC_KEXEC_DELAY": "0"]
        let (status, out) = try ScriptRun.run(["/bin/sh", bundle + "/kexec.sh", "server", bundle + "/deployment.json"],
                                              environment: env, directory: work)
        XCTAssertEqual(status, 0, out)
        XCTAssertTrue(out.contains("nxc: server loaded; kexec in 0 s"), out)
        let deadline = Date().addingTimeInterval(10)
        while Hostile.calls("kexec", in: stubs).count < 2 && Date() < deadline { usleep(50_000) }
        XCTAssertEqual(Hostile.calls("kexec", in: stubs), [
            ["-l", bundle + "/kernel", "--initrd=" + bundle + "/initrd",
             "--command-line=" + Hostile.kernelParams.joined(separator: " ") + " nxc.host=server nxc.deployment=REVQTE9ZTUVOVA=="],
            ["-e"],
        ])
        XCTAssertEqual(Hostile.calls("base64", in: stubs), [["-w0", bundle + "/deployment.json"]])
        XCTAssertEqual(Hostile.pwned(under: work), [], "a hostile value ran as a command")
    }

    /// NXC_NET's words (nfs-store: the node's address and nxc.root=URL) follow the inline document.
    func testRunAddsTheNetworkWordsToAnInlineDocument() throws {
        let (work, stubs, bundle) = try bundleFolder()
        defer { try? FileManager.default.removeItem(atPath: work) }
        let net = "nxc.if=52:54:00:12:34:56,10.0.0.2/24 nxc.root=nfs://10.0.0.9/srv/nxc/store/" + String(repeating: "ab", count: 16)
        let env = ["PATH": stubs + ":/usr/bin:/bin", "NXC_KEXEC_DELAY": "0", "NXC_NET": net]
        let (status, out) = try ScriptRun.run(["/bin/sh", bundle + "/kexec.sh", "server", bundle + "/deployment.json"],
                                              environment: env, directory: work)
        XCTAssertEqual(status, 0, out)
        let deadline = Date().addingTimeInterval(10)
        while Hostile.calls("kexec", in: stubs).isEmpty && Date() < deadline { usleep(50_000) }
        XCTAssertEqual(Hostile.calls("kexec", in: stubs).first?.last,
                       "--command-line=" + Hostile.kernelParams.joined(separator: " ") + " nxc.host=server nxc.deployment=REVQTE9ZTUVOVA== " + net)
    }

    /// NXC_KEXEC_DELAY reaches a shell of its own: anything but a number is refused before kexec.
    func testRunRefusesANonNumericDelay() throws {
        let (work, stubs, bundle) = try bundleFolder()
        defer { try? FileManager.default.removeItem(atPath: work) }
        let env = ["PATH": stubs + ":/usr/bin:/bin", "NXC_KEXEC_DELAY": "0; touch pwned-delay"]
        let (status, out) = try ScriptRun.run(["/bin/sh", bundle + "/kexec.sh", "server", bundle + "/deployment.json"],
                                              environment: env, directory: work)
        XCTAssertNotEqual(status, 0, out)
        XCTAssertTrue(out.contains("NXC_KEXEC_DELAY"), out)
        Thread.sleep(forTimeInterval: 1.5)
        XCTAssertEqual(Hostile.calls("kexec", in: stubs), [])
        XCTAssertEqual(Hostile.pwned(under: work), [])
    }

    /// Scratch folder, stubs (kexec, base64, sync) and a bundle with a hostile kexec.sh.
    func bundleFolder() throws -> (work: String, stubs: String, bundle: String) {
        let work = try Hostile.scratch()
        let stubs = work + "/stubs"
        let bundle = work + "/" + Hostile.folderName + "/bundle"
        for d in [stubs, bundle] { try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true) }
        try Hostile.recorder("kexec", in: stubs)
        try Hostile.recorder("sync", in: stubs)
        try Hostile.recorder("base64", in: stubs, thenPrint: "REVQTE9ZTUVOVA==")
        for f in ["kernel", "initrd", "deployment.json"] {
            try Data("x".utf8).write(to: URL(fileURLWithPath: bundle + "/" + f))
        }
        _ = try KexecStart().prepare(buildDirectory: bundle, composition: try Hostile.webserver(), flavour: try Hostile.flavour("g5k-ramdisk"))
        return (work, stubs, bundle)
    }
}
