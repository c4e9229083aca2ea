import Foundation
import XCTest
@testable import NXCDeploy
@testable import NXCDeployment
import NXCFlavours

/// Flavour files are untrusted input (a project's, $NXC_DATA's, or an archive's given to `nxc verify`):
/// these tests use only `Flavour.load` and `Flavour.named`, what the rest of nxc calls.
final class FlavourTests: XCTestCase {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    var scratch = ""

    override func setUpWithError() throws {
        scratch = NSTemporaryDirectory() + "nxc-flavour-tests-\(getpid())-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: scratch + "/flavours", withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: scratch)
    }

    /// Writes `text` as `flavours/<base>.yaml` in the scratch project and returns its path.
    func write(_ base: String, _ text: String) throws -> String {
        let p = "\(scratch)/flavours/\(base).yaml"
        try Data(text.utf8).write(to: URL(fileURLWithPath: p))
        return p
    }

    func assertRefused(_ text: String, base: String = "f", _ expected: String..., file: StaticString = #filePath, line: UInt = #line) throws {
        let p = try write(base, text)
        XCTAssertThrowsError(try Flavour.load(path: p), file: file, line: line) { e in
            for x in expected { XCTAssertTrue("\(e)".contains(x), "'\(e)' does not say '\(x)'", file: file, line: line) }
            XCTAssertTrue("\(e)".hasPrefix(p + ":"), "'\(e)' names the file", file: file, line: line)
        }
    }

    func testShippedFlavoursLoad() throws {
        let dir = Self.repo + "/flavours"
        let names = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".yaml") }.sorted()
        XCTAssertEqual(names, ["docker.yaml", "g5k-image.yaml", "g5k-ramdisk.yaml", "nfs-store.yaml", "nspawn.yaml", "pxe-nfs-store.yaml", "pxe.yaml",
                               "vm-ramdisk.yaml"])
        for n in names {
            let f = try Flavour.load(path: "\(dir)/\(n)")
            XCTAssertEqual(f.name + ".yaml", n)
            XCTAssertFalse(f.packages.isEmpty, n)
        }
        let g = try Flavour.load(path: dir + "/g5k-image.yaml")
        XCTAssertEqual(g.settings(as: TarballSettings.self).visibility, "private")
        XCTAssertEqual(g.settings(as: TarballSettings.self).postinstall?.script, "g5k-postinstall --net none")
        XCTAssertEqual(g.links.count, 2)
        XCTAssertTrue(g.kernelParams.contains("nxc.await=ssh"))
        let r = try Flavour.load(path: dir + "/g5k-ramdisk.yaml")
        XCTAssertTrue(r.settings(as: RamdiskSettings.self).keepKernel)
        XCTAssertEqual(r.components, ["main", "non-free-firmware"])
        XCTAssertEqual(r.bootTimeout, 600)
        XCTAssertTrue(r.mask.contains("kexec-load.service"))
        let v = try Flavour.load(path: dir + "/vm-ramdisk.yaml")
        XCTAssertTrue(v.settings(as: RamdiskSettings.self).modules.contains("kernel/drivers/net/ethernet/intel/"))
        XCTAssertEqual(v.settings(as: QemuSettings.self).memory, 1536)
        XCTAssertEqual(v.artefact, "ramdisk")
        XCTAssertEqual(v.start, "qemu")
    }

    /// Every file of the corpus fails with exactly the message in its `.expected` file (FILE stands for its path).
    func testBadFlavourCorpus() throws {
        let bundled = try XCTUnwrap(Bundle.module.resourceURL?.appendingPathComponent("BadFlavours"))
        let files = try FileManager.default.contentsOfDirectory(atPath: bundled.path).filter { $0.hasSuffix(".yaml") }.sorted()
        XCTAssertGreaterThanOrEqual(files.count, 30)
        for f in files {
            let expectedPath = bundled.appendingPathComponent(f.replacingOccurrences(of: ".yaml", with: ".expected")).path
            let expected = try String(contentsOfFile: expectedPath, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            let path = bundled.appendingPathComponent(f).path
            do {
                _ = try Flavour.load(path: path)
                XCTFail("\(f) was accepted; expected: \(expected)")
            } catch {
                XCTAssertEqual("\(error)", expected.replacingOccurrences(of: "FILE", with: path), f)
            }
        }
    }

    /// Defect 2: a flavour named `../../x` built into `build/<c>/../../x`, and its swap moved and
    /// removed folders outside `build/`.
    func testNameThatIsAPathIsRefused() throws {
        try assertRefused("name: ../../x\nartefact: ramdisk\nstart: qemu\n", ":1:7: error: name: '../../x' is not a flavour name")
        try assertRefused("name: .\nartefact: ramdisk\nstart: qemu\n", base: "x", "error: name:")
        try assertRefused("name: \"a/b\"\nartefact: ramdisk\nstart: qemu\n", base: "x", "error: name:")
        try assertRefused("name: Docker\nartefact: ramdisk\nstart: qemu\n", base: "Docker", "error: name:")
    }

    /// The name is the file's: `-f x` must not give a flavour called something else (another build folder).
    func testNameMustBeTheFileName() throws {
        try assertRefused("name: docker\nartefact: docker-image\nstart: docker\n", base: "mine",
                          ":1:7: error: name: 'docker' must be the file's base name")
        let p = try write("mine", "name: mine\nartefact: docker-image\nstart: docker\n")
        XCTAssertEqual(try Flavour.load(path: p).name, "mine")
    }

    func testKernelParameterWithNewlineIsRefused() throws {
        try assertRefused("name: f\nartefact: ramdisk\nstart: qemu\nkernel_params: [\"a\\nb\"]\n",
                          ":4:17: error: kernel_params[0]: kernel parameter 'a\\nb' must be printable ASCII")
        try assertRefused("name: f\nartefact: ramdisk\nstart: qemu\nkernel_params: [\"a\\0b\"]\n", "kernel_params[0]")
        try assertRefused("name: f\nartefact: ramdisk\nstart: qemu\nkernel_params: [\"a b\"]\n", "kernel_params[0]", "spaces")
        try assertRefused("name: f\nartefact: ramdisk\nstart: qemu\nkernel_params: [\"--\", \"init=/bin/sh\"]\n", "kernel_params[0]")
        try assertRefused("name: f\nartefact: ramdisk\nstart: qemu\nkernel_params: [nxc.host=server]\n", "kernel_params[0]", "nxc.host")
        let long = (0..<40).map { "p\($0)=" + String(repeating: "x", count: 30) }
        try assertRefused("name: f\nartefact: ramdisk\nstart: qemu\nkernel_params: [\(long.joined(separator: ", "))]\n",
                          ":4:16: error: kernel_params: the parameters take", "more than 1024")
        let p = try write("f", "name: f\nartefact: ramdisk\nstart: qemu\nkernel_params: ['dyndbg=\"file x.c +p\"', nxc.await=ssh, quiet]\n")
        XCTAssertEqual(try Flavour.load(path: p).kernelParams, ["dyndbg=\"file x.c +p\"", "nxc.await=ssh", "quiet"])
    }

    func testUnknownKeySaysTheNearest() throws {
        try assertRefused("name: f\nartefact: ramdisk\nstart: qemu\npakages: [curl]\n",
                          ":4:1: error: pakages: unknown key 'pakages'; did you mean 'packages'?")
        try assertRefused("name: f\nartefact: tarbal\nstart: kadeploy\n", ":2:11: error: artefact: unknown artefact kind 'tarbal'; did you mean 'tarball'?")
        try assertRefused("name: f\nartefact: tarball\nstart: kadeploy\nkadeploy: { visibilty: private }\n",
                          "error: kadeploy.visibilty: unknown key 'visibilty'; did you mean 'visibility'?")
    }

    func testEveryFieldIsChecked() throws {
        let head = "name: f\nartefact: ramdisk\nstart: qemu\n"
        try assertRefused(head + "packages: [\"curl;id\"]\n", ":4:12: error: packages[0]: package 'curl;id' is not a Debian package name")
        try assertRefused(head + "components: [\"main\\nX\"]\n", ":4:14: error: components[0]:")
        try assertRefused(head + "modules: [kernel/../../etc/]\n", ":4:11: error: modules[0]:", "'..'")
        try assertRefused(head + "modules: [\"virtio net\"]\n", "error: modules[0]:")
        try assertRefused(head + "firmware: [../../etc/shadow]\n", ":4:12: error: firmware[0]:", "'..'")
        try assertRefused(head + "firmware: [/etc/shadow]\n", "error: firmware[0]:", "relative")
        try assertRefused(head + "mask: [\"a;b\"]\n", ":4:8: error: mask[0]: 'a;b' is not a systemd unit name")
        try assertRefused(head + "mask: [\"-H\"]\n", "error: mask[0]:")
        try assertRefused(head + "files: { etc/x: y }\n", ":4:10: error: files.etc/x:", "absolute")
        try assertRefused(head + "files: { /etc/../root/.ssh/authorized_keys: y }\n", "error: files./etc/../root/.ssh/authorized_keys:")
        try assertRefused(head + "files: { /usr/sbin/nxc-agent: y }\n", "error: files./usr/sbin/nxc-agent:", "nxc puts its own files")
        try assertRefused(head + "files: { \"/etc/a\\nb\": y }\n", "error: files./etc/a\\nb:")
        try assertRefused(head + "links: { /etc/x: \"a\\nb\" }\n", ":4:18: error: links./etc/x: link target 'a\\nb'")
        try assertRefused(head + "files: { /etc/x: a }\nlinks: { /etc/x: b }\n", "error: links./etc/x:", "also given by files")
        try assertRefused(head + "files: { /etc/x: a, /etc/x/y: b }\n", "error: files./etc/x/y:", "inside '/etc/x'")
        // kadeploy: is the tarball kind's key (Tarball/TarballSettings); a ramdisk flavour giving it is refused.
        let tarball = "name: f\nartefact: tarball\nstart: kadeploy\n"
        try assertRefused(tarball + "kadeploy: { visibility: world }\n", "error: kadeploy.visibility: unknown visibility 'world'")
        try assertRefused(tarball + "kadeploy: { postinstall: { archive: a, compression: gzip, script: \"x\\ny\" } }\n",
                          "error: kadeploy.postinstall.script:", "control characters")
        try assertRefused(tarball + "kadeploy: { postinstall: { archive: a } }\n", "error: kadeploy.postinstall:", "'compression', 'script'")
        try assertRefused(head + "kadeploy: { visibility: private }\n",
                          ":4:1: error: kadeploy: only artefact kind tarball reads it; this flavour's artefact is ramdisk")
        try assertRefused(tarball + "modules: [virtio_net]\n",
                          ":4:1: error: modules: only artefact kinds ramdisk, netroot read it; this flavour's artefact is tarball")
        try assertRefused(head + "memory: 64\n", ":4:9: error: memory:")
        try assertRefused(head + "memory: 1T\n", "error: memory:")
        try assertRefused(head + "memory: -9223372036854775807G\n", "error: memory:")
        try assertRefused(head + "memory: 9223372036854775807G\n", "error: memory:")
        try assertRefused(head + "boot_timeout: 0\n", ":4:15: error: boot_timeout:")
        try assertRefused(head + "boot_timeout: 100000\n", "error: boot_timeout:")
        try assertRefused(head + "description: \"a\\nb\"\n", ":4:14: error: description:", "one line")
        try assertRefused(head + "description: \"\\e[2J\"\n", "error: description:")
        try assertRefused(head + "keep_kernel: maybe\n", ":4:14: error: keep_kernel: expected true or false")
        try assertRefused("name: f\nartefact: ramdisk\n", ":1:1: error: start: missing key 'start'")
        try assertRefused(head + "packages: curl\n", ":4:11: error: packages: expected a list of strings")
    }

    /// `foo` in `mask:` is `foo.service`: the link that masks it must carry the unit's whole name.
    func testMaskIsNormalised() throws {
        let p = try write("f", "name: f\nartefact: ramdisk\nstart: qemu\nmask: [foo, bar.timer, php8.2-fpm]\n")
        XCTAssertEqual(try Flavour.load(path: p).mask, ["foo.service", "bar.timer", "php8.2-fpm.service"])
    }

    /// Aliases cost nothing to write but their content is copied into the image each time.
    func testFileContentsAreBoundedAfterAliases() throws {
        let big = String(repeating: "x", count: 200_000)
        let refs = (0..<6).map { "  /etc/f\($0): *big" }.joined(separator: "\n")
        try assertRefused("name: f\nartefact: ramdisk\nstart: qemu\nx: &big \(big)\nfiles:\n\(refs)\n", "error: x: unknown key")
        try assertRefused("name: f\nartefact: ramdisk\nstart: qemu\nfiles:\n  /etc/f: &big \(big)\n\(refs)\n",
                          "error: files./etc/f4:", "more than 1048576 bytes")
    }

    func testOversizedFileIsRefused() throws {
        let p = try write("f", "name: f\nartefact: ramdisk\nstart: qemu\ndescription: " + String(repeating: "x", count: 1 << 20) + "\n")
        XCTAssertThrowsError(try Flavour.load(path: p)) { e in
            XCTAssertTrue("\(e)".hasPrefix(p + ": error: a flavour file is limited to 1 MiB"), "\(e)")
        }
    }

    /// Yams recurses: 100,000 levels (200 KB) overflowed the stack (SIGSEGV) before any error could be given.
    func testDeepNestingIsAnErrorNotACrash() throws {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        try assertRefused("name: f\nartefact: ramdisk\nstart: qemu\npackages: \(deep)\n", ":4:", "error: nesting deeper than 64 levels")
        let block = (0..<1000).map { String(repeating: " ", count: $0) + "- " }.joined(separator: "\n") + "x\n"
        try assertRefused("name: f\nartefact: ramdisk\nstart: qemu\npackages:\n" + block, "nesting deeper than 64 levels")
    }

    /// A billion laughs: a few lines that expand to 10⁹ values once aliases are replaced.
    func testAliasBombIsRefused() throws {
        var text = "name: f\nartefact: ramdisk\nstart: qemu\nl0: &p0 [a, b, c, d, e, f, g, h, i, j]\n"
        for i in 1...9 { text += "l\(i): &p\(i) [" + Array(repeating: "*p\(i - 1)", count: 10).joined(separator: ", ") + "]\n" }
        try assertRefused(text, "values once aliases are expanded")
    }

    /// A FIFO where a flavour file should be must give an error, not wait for a writer forever.
    func testFIFOIsRefusedWithoutHanging() throws {
        let p = scratch + "/flavours/fifo.yaml"
        XCTAssertEqual(mkfifo(p, 0o600), 0)
        let done = DispatchSemaphore(value: 0)
        let result = LockedBox<String>()
        Thread.detachNewThread {
            do { _ = try Flavour.load(path: p); result.set("loaded") } catch { result.set("\(error)") }
            done.signal()
        }
        guard done.wait(timeout: .now() + 10) == .success else {
            XCTFail("loading a FIFO did not return within 10 s")
            return
        }
        XCTAssertTrue(result.get()?.contains("regular file") ?? false, result.get() ?? "")
    }

    /// `Flavour.named` gets names from `-f`, locks and archives: a path must never be built from a bad one.
    func testNamedRefusesPaths() throws {
        // A file the traversal would reach: scratch/x.yaml, two levels above scratch/flavours/../
        try Data("name: x\nartefact: ramdisk\nstart: qemu\n".utf8).write(to: URL(fileURLWithPath: scratch + "/x.yaml"))
        for bad in ["../x", "../../x", "/etc/passwd", "", ".", "..", "a/b", "X", "x\n", "-x", String(repeating: "a", count: 64)] {
            XCTAssertThrowsError(try Flavour.named(bad, project: scratch), bad) { e in
                XCTAssertTrue("\(e)".contains("is not a flavour name"), "\(bad): \(e)")
            }
        }
        _ = try write("mine", "name: mine\nartefact: ramdisk\nstart: qemu\n")
        XCTAssertEqual(try Flavour.named("mine", project: scratch).name, "mine")
        XCTAssertThrowsError(try Flavour.named("mines", project: scratch)) { e in
            XCTAssertTrue("\(e)".contains("unknown flavour 'mines'; did you mean 'mine'?"), "\(e)")
        }
    }
}

/// A value set by one thread and read by another.
final class LockedBox<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: T?
    func set(_ v: T) { lock.lock(); value = v; lock.unlock() }
    func get() -> T? { lock.lock(); defer { lock.unlock() }; return value }
}
