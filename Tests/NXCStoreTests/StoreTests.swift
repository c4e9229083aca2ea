import Foundation
import XCTest
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
