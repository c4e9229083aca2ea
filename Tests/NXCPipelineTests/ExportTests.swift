import Foundation
import XCTest
import NXCTestSupport
import NXCArchive
import NXCBuild
import NXCStore
import NXCFlavours
@testable import NXCDeploy
@testable import NXCDeployment
@testable import NXCPipeline

/// `nxc verify` reads an archive from elsewhere: streamed, bounded, every name and type checked.
/// (The rebuild itself needs mmdebstrap: EndToEndTests/ReproducibilityTests.)
final class ExportTests: XCTestCase {
    /// The repository (flavour files).
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    var dir = ""

    override func setUp() {
        dir = NSTemporaryDirectory() + "nxc-export-test-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: dir + "/work", withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    /// A member: a file with bytes, a file of `zeros` zero bytes (a sparse source), or another kind.
    enum Member {
        case file(String, [UInt8])
        case zeros(String, Int64)
        case directory(String)
        case symlink(String, String)
        case fifo(String)
    }

    func archive(_ name: String, _ members: [Member]) throws -> String {
        let path = dir + "/" + name
        let w = try ArchiveWriter(path: path, format: .pax, filter: .zstd(level: 19))
        for m in members {
            switch m {
            case .file(let p, let b): try w.addFile(p, bytes: b)
            case .zeros(let p, let n):
                let src = dir + "/zeros-\(UUID().uuidString)"
                XCTAssertEqual(truncate(src, 0), -1) // absent
                FileManager.default.createFile(atPath: src, contents: nil)
                XCTAssertEqual(truncate(src, off_t(n)), 0)
                try w.addFile(p, contentsOf: src, mode: 0o644)
                try FileManager.default.removeItem(atPath: src)
            case .directory(let p): try w.addDirectory(p)
            case .symlink(let p, let t): try w.addSymlink(p, target: t)
            case .fifo(let p): try w.addFifo(p, mode: 0o644)
            }
        }
        try w.finish()
        return path
    }

    func sums(_ files: [(String, [UInt8])]) -> [UInt8] {
        Array(files.map { "\(sha256(bytes: $0.1))  \($0.0)\n" }.joined().utf8)
    }

    /// Verifies in a work folder of its own each time.
    func verify(_ archive: String, limits: Export.Limits = Export.Limits()) async throws -> Export.VerifyReport {
        let work = dir + "/work/" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        return try await Export.verify(archive: archive, store: Store(root: dir + "/store"), workDirectory: work,
                                       keep: true, limits: limits, progress: { _ in })
    }

    func assertRefused(_ archive: String, limits: Export.Limits = Export.Limits(), saying words: [String],
                       file: StaticString = #filePath, line: UInt = #line) async {
        do {
            _ = try await verify(archive, limits: limits)
            XCTFail("\(archive) was accepted", file: file, line: line)
        } catch {
            for w in words { XCTAssertTrue("\(error)".contains(w), "'\(w)' not in: \(error)", file: file, line: line) }
        }
    }

    // MARK: memory

    /// A few KB of zstd that expand to 256 MiB: verify streams it to disk, and the verifying
    /// process never holds more than 100 MB. The child reports its own VmHWM: wait4's ru_maxrss
    /// would also count this process's peak, which the kernel carries over to a child through exec.
    func testBombIsStreamedInBoundedMemory() throws {
        let big: Int64 = 256 << 20
        let zeros = [UInt8](repeating: 0, count: 1 << 20)
        let h = SHA256Digest()
        for _ in 0..<(big >> 20) { h.update(zeros) }
        let sumsText = Array("\(SHA256Digest.hex(h.finalize()))  big\n".utf8)
        let bomb = try archive("bomb.tar.zst", [.directory("bomb"), .file("bomb/SHA256SUMS", sumsText), .zeros("bomb/big", big)])
        let size = try XCTUnwrap(try FileManager.default.attributesOfItem(atPath: bomb)[.size] as? Int)
        XCTAssertLessThan(size, 64 << 10, "the bomb is small")
        let result = dir + "/child-result"
        let child = try ChildProcess.spawnSelf(test: "NXCPipelineTests.ExportTests/testChildVerify",
                                               environment: ["NXC_TEST_CHILD_ARCHIVE": bomb, "NXC_TEST_CHILD_RESULT": result,
                                                             "NXC_TEST_CHILD_WORK": dir + "/work"])
        XCTAssertTrue(child.wait(timeout: 600), "the child verify did not finish")
        let said = (try? String(contentsOfFile: result, encoding: .utf8)) ?? "(nothing)"
        // It got through the 256 MiB (hashed it against SHA256SUMS) and stopped at the missing composition.
        XCTAssertTrue(said.contains("no composition file"), said)
        let peak = try XCTUnwrap(said.split(separator: "\n").last { $0.hasPrefix("VmHWM:") }
            .flatMap { Int($0.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") }, said)
        XCTAssertLessThan(peak, 100 * 1024, "peak RSS \(peak) KiB")
    }

    /// Run only as the child of `testBombIsStreamedInBoundedMemory`.
    func testChildVerify() async throws {
        let env = ProcessInfo.processInfo.environment
        guard let archive = env["NXC_TEST_CHILD_ARCHIVE"], let result = env["NXC_TEST_CHILD_RESULT"], let work = env["NXC_TEST_CHILD_WORK"] else {
            throw XCTSkip("the child half of testBombIsStreamedInBoundedMemory")
        }
        var said = "accepted"
        do {
            _ = try await Export.verify(archive: archive, store: Store(root: work + "/store"), workDirectory: work, progress: { _ in })
        } catch {
            said = "\(error)"
        }
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        let hwm = status.split(separator: "\n").first { $0.hasPrefix("VmHWM:") }.map { $0.split(separator: "\t").joined(separator: " ") } ?? ""
        try Data((said + "\n" + hwm + "\n").utf8).write(to: URL(fileURLWithPath: result))
    }

    func testOverMaxSizeIsRefusedNamingIt() async throws {
        let a = try archive("big.tar.zst", [.directory("x"), .zeros("x/big", 3 << 20)])
        await assertRefused(a, limits: Export.Limits(totalBytes: 1 << 20), saying: ["--max-size", "x/big", "1048576"])
        // The header's size is checked before a byte is written.
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/work/x/big"))
    }

    // MARK: hostile members

    func testMembersLeavingTheFolderAreRefused() async throws {
        let a = try archive("dotdot.tar.zst", [.directory("x"), .file("x/../../escaped", [1])])
        await assertRefused(a, saying: ["x/../../escaped", "'..'"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/escaped"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: NSTemporaryDirectory() + "escaped"))
    }

    func testAbsoluteAndHardLinkMembersAreRefused() async throws {
        let src = dir + "/src"
        try FileManager.default.createDirectory(atPath: src + "/x", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: src + "/x/a", contents: Data("a".utf8))
        XCTAssertEqual(link(src + "/x/a", src + "/x/b"), 0)
        let tar = try XCTUnwrap(Command.which("tar"))
        let abs = dir + "/abs.tar.zst", hard = dir + "/hard.tar.zst"
        try Command.run([tar, "--zstd", "-P", "-cf", abs, src + "/x/a"])
        try Command.run([tar, "--zstd", "-C", src, "-cf", hard, "x"])
        await assertRefused(abs, saying: ["absolute"])
        await assertRefused(hard, saying: ["hard link"])
    }

    func testOnlyFilesAndFoldersAreAccepted() async throws {
        await assertRefused(try archive("link.tar.zst", [.directory("x"), .symlink("x/l", "/etc")]), saying: ["x/l", "a symbolic link"])
        await assertRefused(try archive("fifo.tar.zst", [.directory("x"), .fifo("x/f")]), saying: ["x/f", "a FIFO"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/work/x/l"))
    }

    func testBadNamesAreRefused() async throws {
        await assertRefused(try archive("nl.tar.zst", [.directory("x"), .file("x/a\nb", [1])]), saying: ["control character", "a\\nb"])
        await assertRefused(try archive("bidi.tar.zst", [.directory("x"), .file("x/a\u{202e}b", [1])]), saying: ["control character"])
        let long = String(repeating: "d/", count: 40) + "f"
        await assertRefused(try archive("long.tar.zst", [.file("x/" + long, [1])]), limits: Export.Limits(pathBytes: 50),
                            saying: ["longer than 50 bytes"])
    }

    func testStructureIsChecked() async throws {
        await assertRefused(try archive("two.tar.zst", [.file("x/a", [1]), .file("y/b", [1])]), saying: ["more than one top folder"])
        await assertRefused(try archive("twice.tar.zst", [.file("x/a", [1]), .file("x/a", [2])]), saying: ["appears twice"])
        await assertRefused(try archive("many.tar.zst", (0..<10).map { .file("x/\($0)", [1]) }), limits: Export.Limits(members: 5),
                            saying: ["more than 5 members"])
        await assertRefused(try archive("flat.tar.zst", [.file("a", [1])]), saying: ["outside the top folder"])
        await assertRefused(try archive("empty.tar.zst", []), saying: ["empty archive"])
        await assertRefused(try archive("nosums.tar.zst", [.file("x/a", [1])]), saying: ["no SHA256SUMS"])
    }

    /// Flavour names come from member paths: checked before any path is made of them.
    func testFlavourNamesFromTheArchiveAreChecked() async throws {
        let art: [UInt8] = [1, 2, 3]
        let bad = try archive("badflavour.tar.zst", [.file("x/SHA256SUMS", sums([("artefacts/Bad_Name/initrd", art)])),
                                                     .file("x/artefacts/Bad_Name/initrd", art)])
        await assertRefused(bad, saying: ["Bad_Name", "not a flavour name"])
        let noFile = try archive("noflavourfile.tar.zst", [.file("x/SHA256SUMS", sums([("artefacts/docker/image.tar", art)])),
                                                           .file("x/artefacts/docker/image.tar", art)])
        await assertRefused(noFile, saying: ["flavours/docker.yaml"])
        let badSums = try archive("badsums.tar.zst", [.file("x/SHA256SUMS", Array("\(String(repeating: "a", count: 64))  ../../etc/passwd\n".utf8))])
        await assertRefused(badSums, saying: ["SHA256SUMS:1", "'..'"])
    }

    /// The agent an export carries is a regular file of bounded size.
    func testExportedAgentIsBounded() async throws {
        let comp = Array("name: x\n".utf8), lock = Array("lock: 1\n".utf8)
        let agentBytes: Int64 = Export.agentMaxBytes + 1
        let zeros = [UInt8](repeating: 0, count: 1 << 20)
        let h = SHA256Digest()
        for _ in 0..<(agentBytes >> 20) { h.update(zeros) }
        h.update([0])
        let text = Array((String(decoding: sums([("composition.yaml", comp), ("composition.lock", lock)]), as: UTF8.self)
                          + "\(SHA256Digest.hex(h.finalize()))  tool/nxc-agent\n").utf8)
        let a = try archive("agent.tar.zst", [.file("x/SHA256SUMS", text), .file("x/composition.yaml", comp),
                                             .file("x/composition.lock", lock), .zeros("x/tool/nxc-agent", agentBytes)])
        await assertRefused(a, saying: ["tool/nxc-agent", "more than an agent"])
    }

    func testExportedAgentIsUsedWhenListed() throws {
        let root = dir + "/x"
        try FileManager.default.createDirectory(atPath: root + "/tool", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: root + "/tool/nxc-agent", contents: Data("agent".utf8))
        XCTAssertEqual(try Export.exportedAgent(root: root, archive: "a", listed: ["tool/nxc-agent"], present: ["tool/nxc-agent"]),
                       root + "/tool/nxc-agent")
        XCTAssertNil(try Export.exportedAgent(root: root, archive: "a", listed: [], present: ["tool/nxc-agent"]),
                     "an agent SHA256SUMS does not list is not used")
    }

    /// What an export records about the tool: the version and the agent, in the README.
    func testReadmeNamesToolAndAgent() {
        let lock = LockFile(mirror: "http://deb.debian.org/debian", suite: "bookworm", architecture: "amd64", sourceDateEpoch: 1_700_000_000)
        let text = Export.readme(name: "paper", tool: "nxc 9.9.9", agentSHA256: String(repeating: "ab", count: 32),
                                 composition: "web", compositionFile: "composition.yaml", flavours: [], lock: lock)
        XCTAssertTrue(text.contains("nxc 9.9.9"))
        XCTAssertTrue(text.contains("tool/nxc-agent"))
        XCTAssertTrue(text.contains(String(repeating: "ab", count: 32)))
    }

    /// Differences inside two archives are found member by member, streamed.
    func testArchiveDifferencesNameTheMember() throws {
        func cpio(_ name: String, _ role: String) throws -> String {
            let p = dir + "/" + name
            let w = try ArchiveWriter(path: p, format: .cpioNewc, filter: .zstd(level: 3))
            try w.addDirectory("/etc")
            try w.addFile("/etc/role", bytes: Array(role.utf8))
            try w.addFile("/etc/same", bytes: [1])
            try w.finish()
            return p
        }
        let d = Export.archiveDifferences(exported: try cpio("a", "server"), rebuilt: try cpio("b", "client"))
        XCTAssertEqual(d, ["etc/role (content)"])
    }
}

/// The export's README says how to start each flavour, from what its start method says of itself.
final class ExportReadmeTests: XCTestCase {
    func testStartLinesComeFromTheMethods() throws {
        let flavours = try ["docker", "g5k-image", "g5k-ramdisk", "vm-ramdisk"].map { try Flavour.load(path: ExportTests.repo + "/flavours/\($0).yaml") }
        let lock = LockFile(mirror: "http://deb.debian.org/debian", suite: "bookworm", architecture: "amd64", sourceDateEpoch: 1_700_000_000)
        let text = Export.readme(name: "paper", tool: "0.1.0", agentSHA256: "x", composition: "c", compositionFile: "composition.yaml",
                                 flavours: flavours, lock: lock)
        for line in ["    nxc start -f docker" + String(repeating: " ", count: 19) + "# containers on this machine's Docker engine",
                     "    nxc start -f g5k-image -m $OAR_NODEFILE  # reserved hosts (Kadeploy)",
                     "    nxc start -f g5k-ramdisk -m $OAR_NODEFILE  # reserved hosts (kexec)",
                     "    nxc start -f vm-ramdisk" + String(repeating: " ", count: 19) + "# VMs on this machine"] {
            XCTAssertTrue(text.contains(line + "\n"), "missing: \(line)\n\(text)")
        }
    }
}

/// Results folders in an export: carried only when made with the exported artefacts, and checked
/// against their run's manifest by verify.
final class ExportResultsTests: XCTestCase {
    func testRunsAreTiedToTheExportedArtefacts() throws {
        let fm = FileManager.default
        let work = NSTemporaryDirectory() + "nxc-results-\(UUID().uuidString.prefix(8))"
        defer { try? fm.removeItem(atPath: work) }
        let build = work + "/build", run = work + "/results/run1"
        try fm.createDirectory(atPath: build, withIntermediateDirectories: true)
        try fm.createDirectory(atPath: run + "/server", withIntermediateDirectories: true)
        try Data("{\"artefacts\": 1}".utf8).write(to: URL(fileURLWithPath: build + "/manifest.json"))
        try Data("log\n".utf8).write(to: URL(fileURLWithPath: run + "/server/journal.txt"))
        func manifest(build sha: String, composition: String = "web", flavour: String = "nspawn") throws {
            let m: [String: Any] = ["composition": composition, "flavour": flavour, "build": ["sha256": sha],
                                    "files": [["path": "server/journal.txt", "sha256": try sha256(file: run + "/server/journal.txt"), "size": 4]]]
            try JSONSerialization.data(withJSONObject: m).write(to: URL(fileURLWithPath: run + "/manifest.json"))
        }
        try manifest(build: try sha256(file: build + "/manifest.json"))
        let members = try Export.resultMembers([run], composition: "web", builds: ["nspawn": build])
        XCTAssertEqual(members.map(\.member).sorted(), ["results/run1/manifest.json", "results/run1/server/journal.txt"])
        for (m, why) in [(("web", "docker"), "which this export does not carry; add -f docker"), (("other", "nspawn"), "results of composition other")] {
            try manifest(build: try sha256(file: build + "/manifest.json"), composition: m.0, flavour: m.1)
            XCTAssertThrowsError(try Export.resultMembers([run], composition: "web", builds: ["nspawn": build])) {
                XCTAssertTrue("\($0)".contains(why), "\($0)")
            }
        }
        try manifest(build: String(repeating: "0", count: 64))
        XCTAssertThrowsError(try Export.resultMembers([run], composition: "web", builds: ["nspawn": build])) {
            XCTAssertTrue("\($0)".contains("made with other artefacts of nspawn"), "\($0)")
        }

        // verify: the files as the run's manifest gives them, and the tie to the exported build manifest.
        try manifest(build: try sha256(file: build + "/manifest.json"))
        let root = work + "/x"
        try fm.createDirectory(atPath: root + "/results", withIntermediateDirectories: true)
        try fm.copyItem(atPath: run, toPath: root + "/results/run1")
        try fm.createDirectory(atPath: root + "/artefacts/nspawn", withIntermediateDirectories: true)
        try fm.copyItem(atPath: build + "/manifest.json", toPath: root + "/artefacts/nspawn/manifest.json")
        var sums: [(file: String, sha: String)] = []
        for f in ["results/run1/manifest.json", "results/run1/server/journal.txt", "artefacts/nspawn/manifest.json"] {
            sums.append((f, try sha256(file: root + "/" + f)))
        }
        let lines = Lines()
        XCTAssertEqual(Export.verifyResults(root: root, sums: sums, limits: .init(), progress: { lines.add($0) }).map(\.file), [])
        XCTAssertEqual(lines.all, ["verify: results/run1: 1 file(s) match the run's manifest, made with the exported nspawn artefacts"])
        sums[1].sha = String(repeating: "1", count: 64)
        XCTAssertEqual(Export.verifyResults(root: root, sums: sums, limits: .init(), progress: { _ in }).map(\.message),
                       ["differs from the run's manifest"])
        sums.removeLast()
        sums[1].sha = try sha256(file: root + "/results/run1/server/journal.txt")
        XCTAssertEqual(Export.verifyResults(root: root, sums: sums, limits: .init(), progress: { _ in }).map(\.message),
                       ["made with other artefacts of nspawn than the exported ones"])
    }
}
