import Foundation
import XCTest
@testable import NXCDeploy
@testable import NXCDeployment
@testable import NXCPipeline

final class BuildPipelineTests: XCTestCase {
    var dir = ""

    override func setUp() {
        dir = NSTemporaryDirectory() + "nxc-pipeline-test-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: dir + "/build/c", withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    /// `build/<c>/<f>` is swapped, never removed then recreated: a reader polling it during 50
    /// rebuilds always finds it, with a complete manifest.
    func testBuildFolderIsNeverMissingDuringSwaps() throws {
        let fm = FileManager.default
        let final = dir + "/build/c/vm-ramdisk"
        func folder(_ i: Int) throws -> String {
            let tmp = dir + "/build/c/.vm-ramdisk.tmp-\(getpid())"
            try fm.createDirectory(atPath: tmp, withIntermediateDirectories: false)
            for n in 0..<20 { try Data(repeating: UInt8(i & 0xff), count: 4096).write(to: URL(fileURLWithPath: "\(tmp)/f\(n)")) }
            try Data("\(i)\n".utf8).write(to: URL(fileURLWithPath: tmp + "/manifest.json"))
            return tmp
        }
        try BuildPipeline.install(try folder(0), at: final)
        let poller = Poller(path: final + "/manifest.json")
        let thread = Thread { poller.run() }
        thread.start()
        while !poller.started { usleep(1000) }
        for i in 1...50 { try BuildPipeline.install(try folder(i), at: final) }
        poller.stop()
        XCTAssertGreaterThan(poller.looks, 50)
        XCTAssertEqual(poller.misses, 0, "build/c/vm-ramdisk was missing \(poller.misses) times out of \(poller.looks)")
        XCTAssertEqual(try String(contentsOfFile: final + "/manifest.json", encoding: .utf8), "50\n")
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: dir + "/build/c"), ["vm-ramdisk"], "the old folders are removed")
    }

    /// The first build has nothing to swap with: a plain rename.
    func testFirstInstallRenames() throws {
        let tmp = dir + "/build/c/.docker.tmp-\(getpid())"
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: false)
        try BuildPipeline.install(tmp, at: dir + "/build/c/docker")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir + "/build/c"), ["docker"])
    }
}

/// Reads a path in a tight loop on its own thread and counts the times it was missing.
final class Poller: @unchecked Sendable {
    let path: String
    private let lock = NSLock()
    private var stopping = false
    private var _started = false
    private var _looks = 0
    private var _misses = 0

    init(path: String) { self.path = path }

    var started: Bool { lock.withLock { _started } }
    var looks: Int { lock.withLock { _looks } }
    var misses: Int { lock.withLock { _misses } }

    func run() {
        lock.withLock { _started = true }
        var looks = 0, misses = 0
        while !lock.withLock({ stopping }) {
            for _ in 0..<100 {
                looks += 1
                if access(path, F_OK) != 0 { misses += 1 }
            }
        }
        lock.withLock { _looks = looks; _misses = misses; stopping = false }
    }

    /// Asks the loop to end and waits (at most 10 s) until it has published its counts.
    func stop() {
        lock.withLock { stopping = true }
        let deadline = Date().addingTimeInterval(10)
        while lock.withLock({ stopping }), Date() < deadline { usleep(1000) }
    }
}
