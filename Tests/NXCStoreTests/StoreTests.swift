import Foundation
import XCTest
import NXCTestSupport
@testable import NXCStore

final class StoreTests: XCTestCase {
    var root = ""

    override func setUp() {
        root = NSTemporaryDirectory() + "nxc-store-test-\(UUID().uuidString)"
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: root)
    }

    func testHashDependsOnEveryInputAndFieldBoundaries() {
        var a = InputHash("k"); a.add("x", "ab"); a.add("y", "c")
        var b = InputHash("k"); b.add("x", "a"); b.add("y", "bc")
        var c = InputHash("k"); c.add("x", "ab"); c.add("y", "c")
        XCTAssertNotEqual(a.finalize(), b.finalize())
        XCTAssertEqual(a.finalize(), c.finalize())
        XCTAssertEqual(a.finalize().count, 32)
    }

    func testRealiseBuildsOnceThenReuses() async throws {
        let store = Store(root: root)
        let counter = Counter()
        let first = try await store.realise(name: "thing", hash: "abc") { tmp in
            counter.bump()
            try Data("v1".utf8).write(to: URL(fileURLWithPath: tmp + "/file"))
        }
        XCTAssertFalse(first.reused)
        let second = try await store.realise(name: "thing", hash: "abc") { _ in counter.bump() }
        XCTAssertTrue(second.reused)
        XCTAssertEqual(first.path, second.path)
        XCTAssertEqual(counter.value, 1)
        XCTAssertEqual(try String(contentsOfFile: first.path + "/file", encoding: .utf8), "v1")
    }

    /// A build that fails half-way leaves nothing a later build would trust.
    func testInterruptedEntryIsNeverUsed() async throws {
        let store = Store(root: root)
        struct Boom: Error {}
        do {
            _ = try await store.realise(name: "thing", hash: "def") { tmp in
                try Data("half".utf8).write(to: URL(fileURLWithPath: tmp + "/file"))
                throw Boom()
            }
            XCTFail("expected the build to fail")
        } catch is Boom {}
        XCTAssertNil(store.lookup(name: "thing", hash: "def"))
        let names = try FileManager.default.contentsOfDirectory(atPath: root)
        XCTAssertTrue(names.isEmpty, "left behind: \(names)")
        let again = try await store.realise(name: "thing", hash: "def") { tmp in
            try Data("whole".utf8).write(to: URL(fileURLWithPath: tmp + "/file"))
        }
        XCTAssertFalse(again.reused)
        XCTAssertEqual(try String(contentsOfFile: again.path + "/file", encoding: .utf8), "whole")
    }

    /// A process killed mid-build leaves only a `.tmp-` folder: lookups ignore it, garbage collection removes it.
    func testKilledBuildLeavesOnlyATemporaryFolder() async throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: root, withIntermediateDirectories: true)
        // PID 999999 does not exist: its builder is gone.
        let stale = "\(root)/.tmp-aaa-thing-999999-42"
        try fm.createDirectory(atPath: stale, withIntermediateDirectories: true)
        let store = Store(root: root)
        XCTAssertNil(store.lookup(name: "thing", hash: "aaa"))
        await store.collectGarbage()
        XCTAssertFalse(fm.fileExists(atPath: stale))
    }

    /// An alias whose entry was removed must not block that entry forever: realise replaces it.
    func testDanglingAliasDoesNotBlockTheEntry() async throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: root, withIntermediateDirectories: true)
        let store = Store(root: root)
        let link = store.path(name: "thing", hash: "dang")
        try fm.createSymbolicLink(atPath: link, withDestinationPath: "0000-gone")
        let r = try await store.realise(name: "thing", hash: "dang") { tmp in
            try Data("v".utf8).write(to: URL(fileURLWithPath: tmp + "/file"))
        }
        XCTAssertFalse(r.reused)
        XCTAssertEqual(try String(contentsOfFile: link + "/file", encoding: .utf8), "v")
        XCTAssertEqual(store.lookup(name: "thing", hash: "dang"), link)
    }

    /// An alias never removes an entry that is already there, and replaces a dangling link.
    func testAliasReplacesOnlyADanglingLink() async throws {
        let fm = FileManager.default
        let store = Store(root: root)
        let real = try await store.realise(name: "thing", hash: "real") { tmp in
            try Data("r".utf8).write(to: URL(fileURLWithPath: tmp + "/file"))
        }
        let link = store.path(name: "thing", hash: "alias")
        try fm.createSymbolicLink(atPath: link, withDestinationPath: "0000-gone")
        try store.alias(name: "thing", hash: "alias", to: real.path)
        XCTAssertEqual(try fm.destinationOfSymbolicLink(atPath: link), (real.path as NSString).lastPathComponent)
        XCTAssertEqual(store.lookup(name: "thing", hash: "alias"), link)
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: root).filter { $0.hasPrefix(".") }, [])
    }

    /// Leftovers of every writer are recognised by their PID; only those whose process is gone go.
    func testLeftoversOfGoneProcessesAreCollected() throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: root, withIntermediateDirectories: true)
        let me = getpid()
        let gone = ["\(root)/.vm-ramdisk.tmp-999999", "\(root)/.vm-ramdisk.old-999999", "\(root)/.current.tmp-999999",
                    "\(root)/.tmp-aaa-thing-999999-42", "\(root)/.tmp-link-aaa-thing-999999-7"]
        let kept = ["\(root)/.vm-ramdisk.tmp-\(me)", "\(root)/.init.tmp-1", "\(root)/.hidden", "\(root)/x.tmp-999999",
                    "\(root)/aaa-thing", "\(root)/.tmp-999999"]
        for p in gone + kept { try fm.createDirectory(atPath: p, withIntermediateDirectories: true) }
        XCTAssertEqual(Leftovers.pid(inName: ".vm-ramdisk.tmp-123"), 123)
        XCTAssertEqual(Leftovers.pid(inName: ".a.json.old-7"), 7)
        XCTAssertEqual(Leftovers.pid(inName: ".tmp-h-n-a-me-55-9"), 55)
        XCTAssertNil(Leftovers.pid(inName: ".tmp-123"))
        XCTAssertNil(Leftovers.pid(inName: "a.tmp-123"))
        XCTAssertNil(Leftovers.pid(inName: ".a.tmp-12x"))
        Leftovers.collect(in: root)
        for p in gone { XCTAssertFalse(fm.fileExists(atPath: p), p) }
        for p in kept { XCTAssertTrue(fm.fileExists(atPath: p), p) }
    }

    /// A builder killed with SIGKILL in the middle of `realise` leaves no entry; the next realise
    /// builds it and garbage collection removes what the killed one left.
    func testKill9DuringRealise() async throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: root, withIntermediateDirectories: true)
        let ready = root + "/../" + (root as NSString).lastPathComponent + ".ready"
        defer { try? fm.removeItem(atPath: ready) }
        let child = try ChildProcess.spawnSelf(test: "NXCStoreTests.StoreTests/testChildRealiseAndHang",
                                               environment: ["NXC_TEST_CHILD_STORE": root, "NXC_TEST_CHILD_READY": ready])
        defer { child.stop() }
        let deadline = Date().addingTimeInterval(60)
        while !fm.fileExists(atPath: ready), Date() < deadline, child.isRunning { usleep(50_000) }
        XCTAssertTrue(fm.fileExists(atPath: ready), "the child never reached the build")
        child.stop()
        let store = Store(root: root)
        XCTAssertNil(store.lookup(name: "thing", hash: "killed"))
        let left = try fm.contentsOfDirectory(atPath: root)
        XCTAssertEqual(left.count, 1, "\(left)")
        XCTAssertTrue(left.allSatisfy { $0.hasPrefix(".tmp-killed-thing-\(child.pid)-") }, "\(left)")
        await store.collectGarbage()
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: root), [])
        let again = try await store.realise(name: "thing", hash: "killed") { tmp in
            try Data("whole".utf8).write(to: URL(fileURLWithPath: tmp + "/file"))
        }
        XCTAssertEqual(try String(contentsOfFile: again.path + "/file", encoding: .utf8), "whole")
    }

    /// Run only as the child of `testKill9DuringRealise`: starts a build, says so, and hangs in it.
    func testChildRealiseAndHang() async throws {
        let env = ProcessInfo.processInfo.environment
        guard let storeRoot = env["NXC_TEST_CHILD_STORE"], let ready = env["NXC_TEST_CHILD_READY"] else {
            throw XCTSkip("the child half of testKill9DuringRealise")
        }
        _ = try await Store(root: storeRoot).realise(name: "thing", hash: "killed") { tmp in
            try Data("half".utf8).write(to: URL(fileURLWithPath: tmp + "/file"))
            FileManager.default.createFile(atPath: ready, contents: nil)
            sleep(120) // the parent kills us long before
        }
    }

    func testFileSHA256() throws {
        let p = NSTemporaryDirectory() + "nxc-sha-\(UUID().uuidString)"
        try Data("abc".utf8).write(to: URL(fileURLWithPath: p))
        defer { try? FileManager.default.removeItem(atPath: p) }
        XCTAssertEqual(try sha256(file: p), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func bump() { lock.lock(); n += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return n }
}
