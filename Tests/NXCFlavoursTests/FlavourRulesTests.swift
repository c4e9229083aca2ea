import Foundation
import XCTest
@testable import NXCDeploy
@testable import NXCDeployment
import NXCFlavours

/// The rules one by one, and the parts of the loader's interface the corpus does not reach.
final class FlavourRulesTests: XCTestCase {
    func testKernelParameters() {
        for ok in ["quiet", "console=ttyS0,115200", "panic=-1", "dyndbg=\"file x.c +p\"", "nxc.await=ssh",
                   "systemd.mask=serial-getty@ttyS0.service", "init=/bin/sh", "a=$(id)"] {
            XCTAssertNil(FlavourRules.kernelParameterProblem(ok), ok)
        }
        for bad in ["", "a b", "a\tb", "a\nb", "a\u{0}b", "é=1", "a=\"b", "\"a=b\"", "a=\"b\"c", "a \"=b\"", "x=\"a\"\"b\"",
                    "--", "-b", "=x", "nxc.host=a", "nxc.deployment=e30=", "nxc.deployment_url=http://x", "nxc.if=aa",
                    String(repeating: "a", count: 1025)] {
            XCTAssertNotNil(FlavourRules.kernelParameterProblem(bad), bad)
        }
        XCTAssertNil(FlavourRules.kernelParametersProblem(Array(repeating: String(repeating: "a", count: 99), count: 10)))
        XCTAssertNotNil(FlavourRules.kernelParametersProblem(Array(repeating: String(repeating: "a", count: 100), count: 11)))
    }

    func testPaths() {
        XCTAssertNil(FlavourRules.moduleProblem("9pnet_virtio"))
        XCTAssertNil(FlavourRules.moduleProblem("mlx4-en"))
        XCTAssertNil(FlavourRules.moduleProblem("kernel/"))
        XCTAssertNil(FlavourRules.moduleProblem("kernel/drivers/net/ethernet/intel/"))
        for bad in ["", "a.b", "kernel//x/", "kernel/./x/", "kernel/../x/", "drivers/net/", "kernel/x", "/kernel/x/", "a\nb"] {
            XCTAssertNotNil(FlavourRules.moduleProblem(bad), bad)
        }
        XCTAssertNil(FlavourRules.firmwareProblem("bnx2/"))
        XCTAssertNil(FlavourRules.firmwareProblem("intel/ice/"))
        XCTAssertNil(FlavourRules.firmwareProblem("iwlwifi-8000C-36.ucode"))
        for bad in ["", "/", "/etc/", "..", "../x", "a/../b", "a//b", "./a", "a b", "a\nb"] {
            XCTAssertNotNil(FlavourRules.firmwareProblem(bad), bad)
        }
        XCTAssertNil(FlavourRules.imagePathProblem("/etc/systemd/network/80-nxc-ether.network"))
        for bad in ["", "/", "etc/x", "/etc/", "/etc//x", "/etc/./x", "/etc/../x", "/etc/x\n", "/etc/nxc", "/etc/nxc/role",
                    "/etc", "/usr/share/nxc/roles/a", "/usr/sbin/nxc-agent", "/usr/sbin",
                    "/" + String(repeating: "a", count: 256)] {
            XCTAssertNotNil(FlavourRules.imagePathProblem(bad), bad)
        }
        XCTAssertNil(FlavourRules.linkTargetProblem("../lib/x"))
        XCTAssertNotNil(FlavourRules.linkTargetProblem("x\u{0}"))
        XCTAssertNotNil(FlavourRules.linkTargetProblem(""))
    }

    func testNamesAndText() {
        for ok in ["docker", "vm-ramdisk", "g5k-image", "a", "9", String(repeating: "a", count: 63)] { XCTAssertTrue(FlavourRules.isName(ok), ok) }
        for bad in ["", ".", "..", "../x", "a/b", "A", "a_b", "a.b", "-a", "a-", "a b", String(repeating: "a", count: 64)] {
            XCTAssertFalse(FlavourRules.isName(bad), bad)
        }
        XCTAssertNil(FlavourRules.componentProblem("non-free-firmware"))
        XCTAssertNotNil(FlavourRules.componentProblem("main contrib"))
        XCTAssertNotNil(FlavourRules.componentProblem("Main"))
        XCTAssertNil(FlavourRules.lineProblem("containers — one per node", max: 100))
        XCTAssertNotNil(FlavourRules.lineProblem("a\u{202E}b", max: 100))
        XCTAssertNotNil(FlavourRules.lineProblem("a\u{85}b", max: 100))
        XCTAssertNotNil(FlavourRules.lineProblem("abc", max: 2))
        XCTAssertEqual(FlavourRules.printable("a\nb\u{1B}"), "a\\nb\\u{1B}")
    }

    /// Errors keep the composition's form, and a name from `-f` says it is one.
    func testErrorForms() throws {
        XCTAssertThrowsError(try Flavour.parse("name: f\nartefact: ramdisk\nstart: qemu\nmemory: 1\n", file: "dir/f.yaml")) { e in
            XCTAssertEqual((e as? FlavourError)?.location?.line, 4)
            XCTAssertEqual((e as? FlavourError)?.key, "memory")
            XCTAssertTrue("\(e)".hasPrefix("dir/f.yaml:4:9: error: memory: "), "\(e)")
        }
        XCTAssertThrowsError(try Flavour.named("../x")) { e in
            XCTAssertEqual("\(e)", "error: '../x' is not a flavour name (\(FlavourRules.nameRule))")
        }
        XCTAssertThrowsError(try Flavour.parse("name: f\nartefact: ramdisk\nstart: qemu\n", file: "f.yml")) { e in
            XCTAssertTrue("\(e)".contains("must be the file's base name"), "\(e)")
        }
        XCTAssertEqual(try Flavour.parse("name: f\nartefact: ramdisk\nstart: qemu\nmemory: 2G\npackages:\n", file: "f.yaml").settings(as: QemuSettings.self).memory, 2048)
    }

    /// The example in docs/flavours.md loads, and says what it means to.
    func testDocumentedExampleLoads() throws {
        let doc = try String(contentsOfFile: FlavourTests.repo + "/docs/flavours.md", encoding: .utf8)
        let start = try XCTUnwrap(doc.range(of: "# flavours/vm-small.yaml\n"))
        let end = try XCTUnwrap(doc.range(of: "```", range: start.upperBound..<doc.endIndex))
        let f = try Flavour.parse(String(doc[start.upperBound..<end.lowerBound]), file: "flavours/vm-small.yaml")
        XCTAssertEqual(f.kernelParams, ["console=ttyS0,115200", "panic=-1", "dyndbg=\"file virtio_net.c +p\""])
        XCTAssertEqual(f.mask, ["fstrim.timer", "apt-daily.service"])
        XCTAssertEqual(f.settings(as: QemuSettings.self).memory, 512)
    }

    /// A broken file in the project is reported by `scan`, not silently replaced by an installed one of the same name.
    func testScanReportsBrokenFiles() throws {
        let scratch = NSTemporaryDirectory() + "nxc-flavour-scan-\(getpid())-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: scratch + "/flavours", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        try Data("name: docker\nartefact: docker-image\nstart: dokcer\n".utf8)
            .write(to: URL(fileURLWithPath: scratch + "/flavours/docker.yaml"))
        let s = Flavour.scan(project: scratch)
        XCTAssertFalse(s.flavours.contains { $0.name == "docker" })
        XCTAssertEqual(s.errors.count, 1)
        XCTAssertTrue(s.errors.first?.description.contains("did you mean 'docker'?") ?? false, "\(s.errors)")
        XCTAssertThrowsError(try Flavour.named("docker", project: scratch))
    }
}
