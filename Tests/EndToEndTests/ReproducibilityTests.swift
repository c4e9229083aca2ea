import Foundation
import XCTest
import NXCArchive
import NXCBuild
import NXCStore

/// Reproducibility for papers, end to end with real mmdebstrap builds: webserver built with the store
/// the other end-to-end tests share (itself filled from empty by this run's earlier builds) and again
/// from an empty store gives byte-identical artefacts for vm-ramdisk, g5k-image and docker; export then
/// verify passes; a tampered archive fails naming the file; a lock naming a version the mirror lacks fails
/// clearly; `nxc lock --update` repairs it and prints the change. The checks that need a rebuild
/// after the comparison use the docker flavour, whose base is the smallest. NXC_E2E=1.
final class ReproducibilityTests: XCTestCase {
    static let repo = VMRamdiskTests.repo
    var nxc: String { ProcessInfo.processInfo.environment["NXC_BIN"] ?? Self.repo + "/.build/release/nxc" }
    var work = ""
    var project: String { work + "/webserver" }
    let flavours = ["vm-ramdisk", "g5k-image", "docker"]

    override func setUpWithError() throws {
        try XCTSkipUnless(ProcessInfo.processInfo.environment["NXC_E2E"] == "1", "set NXC_E2E=1 to run the end-to-end tests")
        work = NSTemporaryDirectory() + "nxc-repro-\(UUID().uuidString.prefix(8))"
        // The composition is copied: its lock is written beside it.
        try FileManager.default.createDirectory(atPath: project, withIntermediateDirectories: true)
        for f in ["composition.yaml", "index.html"] {
            try FileManager.default.copyItem(atPath: Self.repo + "/compositions/webserver/" + f, toPath: project + "/" + f)
        }
    }

    override func tearDown() {
        if !work.isEmpty { try? FileManager.default.removeItem(atPath: work) }
    }

    static let archives: Set<String> = ["vm-ramdisk/initrd", "g5k-image/webserver.tar.zst", "docker/image.tar"]

    /// The members of two archives whose path, kind, owner, mode, time, link or bytes differ (at most 20).
    static func differingMembers(_ a: String, _ b: String) throws -> [String] {
        func index(_ path: String) throws -> [String: String] {
            var out: [String: String] = [:]
            for e in try ArchiveReader.entries(path: path) {
                out[e.path] = "\(e.kind) \(e.uid):\(e.gid) \(String(e.mode, radix: 8)) \(e.mtime) \(e.linkTarget ?? "") \(sha256(bytes: e.data))"
            }
            return out
        }
        let x = try index(a), y = try index(b)
        let names = Set(x.keys).union(y.keys).filter { x[$0] != y[$0] }.sorted()
        return names.prefix(20).map { n in "\(n) (\(x[n] == nil ? "only in round 2" : y[n] == nil ? "only in round 1" : "changed"))" }
    }

    func session(store: String) -> NxcSession { NxcSession(nxc: nxc, project: project, extra: ["NXC_STORE": store]) }

    /// SHA-256 of every file of every flavour's build folder.
    func artefactSums() throws -> [String: String] {
        var out: [String: String] = [:]
        for f in flavours {
            let dir = project + "/build/webserver/" + f
            for n in try FileManager.default.contentsOfDirectory(atPath: dir) { out["\(f)/\(n)"] = try sha256(file: dir + "/" + n) }
        }
        return out
    }

    /// Packs `folder/paper` into NAME.tar.zst and runs `nxc verify` on it.
    func repackAndVerify(_ folder: String, as name: String, session: NxcSession) throws -> (Int32, String) {
        let archive = work + "/\(name).tar.zst"
        XCTAssertEqual(try Command.status(["tar", "--zstd", "-cf", archive, "-C", folder, "paper"], timeout: 300).0, 0)
        let r = try Command.status([nxc, "verify", archive], environment: session.environment(), timeout: 1200)
        print("$ nxc verify \(name) → \(r.0)\n\(r.1)")
        return (r.0, r.1)
    }

    func testEmptyStoreBuildsAreIdenticalAndExportVerifies() throws {
        let lockPath = project + "/composition.lock"
        // 1. First builds, no lock yet, with the shared store (its layers come from this run's other
        //    builds, or are made now): the first one writes the lock, the others add their flavours.
        let s1 = session(store: Store.defaultRoot())
        for f in flavours {
            let r = try s1.run(["build", "-f", f], timeout: 2400)
            XCTAssertEqual(r.status, 0, r.output)
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: lockPath), "the first build writes composition.lock")
        let lock1 = try String(contentsOfFile: lockPath, encoding: .utf8)
        let parsed = try LockFile.parse(lock1, file: lockPath)
        XCTAssertEqual(parsed.flavours.keys.sorted(), flavours.sorted())
        XCTAssertTrue(parsed.packages["nginx-light"] != nil && parsed.packages["linux-image-amd64"] != nil, lock1)
        let first = try artefactSums()
        // Round 1's archives, kept to say which members differ if round 2's do not match.
        let kept = work + "/round1"
        for k in first.keys where Self.archives.contains(k) {
            try FileManager.default.createDirectory(atPath: kept + "/" + (k as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: project + "/build/webserver/" + k, toPath: kept + "/" + k)
        }

        // 2. The same composition and lock, an empty store, minutes later: the same bytes. The
        //    flavours have different base systems, so their builds run side by side (mmdebstrap and
        //    dpkg use about one core each), as users of one store would.
        let s2 = session(store: work + "/store2")
        for group in [flavours] {
            let results = ParallelRuns(group.count)
            DispatchQueue.concurrentPerform(iterations: group.count) { i in
                results.set(i, Result { try s2.run(["build", "-f", group[i]], timeout: 2400) })
            }
            for (f, r) in zip(group, results.values) {
                let r = try r.get()
                XCTAssertEqual(r.status, 0, "\(f): \(r.output)")
                XCTAssertTrue(r.output.contains("versions from"), "the second build follows the lock:\n\(r.output)")
            }
        }
        let second = try artefactSums()
        XCTAssertEqual(Set(first.keys), Set(second.keys))
        for k in first.keys.sorted() where first[k] != second[k] {
            let members = Self.archives.contains(k) ? (try? Self.differingMembers(kept + "/" + k, project + "/build/webserver/" + k)) ?? [] : []
            XCTFail("\(k) differs between the two builds" + (members.isEmpty ? "" : "; members that differ: " + members.joined(separator: ", ")))
        }
        for k in ["vm-ramdisk/initrd", "g5k-image/webserver.tar.zst", "docker/image.tar", "docker/docker-compose.yml"] {
            XCTAssertNotNil(first[k], "\(k) is built and compared")
        }
        XCTAssertEqual(try String(contentsOfFile: lockPath, encoding: .utf8), lock1, "a build with a lock leaves it as it is")

        // 3. Export, then verify rebuilds and compares.
        let archive = work + "/paper.tar.zst"
        let e = try s2.run(["export", "-o", archive], timeout: 1200)
        XCTAssertEqual(e.status, 0, e.output)
        let members = try ArchiveReader.entries(path: archive, withData: false).map(\.path)
        for m in ["paper/README.md", "paper/SHA256SUMS", "paper/sbom.cdx.json", "paper/composition.yaml", "paper/composition.lock",
                  "paper/index.html", "paper/flavours/g5k-image.yaml", "paper/artefacts/vm-ramdisk/initrd",
                  "paper/artefacts/g5k-image/webserver.tar.zst", "paper/artefacts/docker/image.tar",
                  "paper/tool/VERSION", "paper/tool/nxc-agent"] {
            XCTAssertTrue(members.contains(m), "\(m) missing from the export: \(members)")
        }
        let v = try Command.status([nxc, "verify", archive], environment: s2.environment(), timeout: 1200)
        print("$ nxc verify → \(v.0)\n\(v.1)")
        XCTAssertEqual(v.0, 0, v.1)
        XCTAssertTrue(v.1.contains("verify: OK"), v.1)

        // 4. Tampered archives fail, naming the file: (a) an artefact changed, (b) changed with its
        //    SHA256SUMS line updated too (only the rebuild can tell). From an export of the docker
        //    flavour alone, so that each verify rebuilds one flavour.
        let small = work + "/paper.tar.zst"
        try FileManager.default.removeItem(atPath: archive)
        let ed = try s2.run(["export", "-f", "docker", "-o", small], timeout: 1200)
        XCTAssertEqual(ed.status, 0, ed.output)
        // A reader whose nxc-agent was built differently (here: other bytes) still gets the same
        // artefacts: verify rebuilds with the agent the archive carries.
        let otherAgent = work + "/other-nxc-agent"
        let agentDir = URL(fileURLWithPath: nxc).deletingLastPathComponent().path
        try FileManager.default.copyItem(atPath: ProcessInfo.processInfo.environment["NXC_AGENT"] ?? agentDir + "/nxc-agent", toPath: otherAgent)
        let h = try XCTUnwrap(FileHandle(forWritingAtPath: otherAgent))
        h.seekToEndOfFile()
        h.write(Data("built differently".utf8))
        try h.close()
        let vo = try Command.status([nxc, "verify", small], environment: s2.environment(["NXC_AGENT": otherAgent]), timeout: 1200)
        print("$ NXC_AGENT=other nxc verify → \(vo.0)\n\(vo.1)")
        XCTAssertEqual(vo.0, 0, vo.1)
        XCTAssertTrue(vo.1.contains("verify: OK"), vo.1)

        let unpacked = work + "/unpacked"
        try FileManager.default.createDirectory(atPath: unpacked, withIntermediateDirectories: true)
        XCTAssertEqual(try Command.status(["tar", "--zstd", "-xf", small, "-C", unpacked], timeout: 300).0, 0)
        let compose = unpacked + "/paper/artefacts/docker/docker-compose.yml"
        let text = try String(contentsOfFile: compose, encoding: .utf8) + "# tampered\n"
        try text.write(toFile: compose, atomically: true, encoding: .utf8)
        let va = try repackAndVerify(unpacked, as: "tampered-a", session: s2)
        XCTAssertNotEqual(va.0, 0)
        XCTAssertTrue(va.1.contains("DIFFERS   artefacts/docker/docker-compose.yml: the archive's copy does not match SHA256SUMS"), va.1)
        XCTAssertTrue(va.1.contains("verify: FAILED, 1 of"), va.1)

        let sumsPath = unpacked + "/paper/SHA256SUMS"
        let newSum = try sha256(file: compose)
        let sums = try String(contentsOfFile: sumsPath, encoding: .utf8).split(separator: "\n").map { line -> String in
            line.hasSuffix("  artefacts/docker/docker-compose.yml") ? "\(newSum)  artefacts/docker/docker-compose.yml" : String(line)
        }
        try (sums.joined(separator: "\n") + "\n").write(toFile: sumsPath, atomically: true, encoding: .utf8)
        let vb = try repackAndVerify(unpacked, as: "tampered-b", session: s2)
        XCTAssertNotEqual(vb.0, 0)
        XCTAssertTrue(vb.1.contains("DIFFERS   artefacts/docker/docker-compose.yml: rebuilt sha256"), vb.1)

        // 5. A lock naming a version the mirror does not have: a clear error naming the package, the
        //    version and the line, suggesting a snapshot mirror; the lock and the build folder stay.
        let imageBefore = try sha256(file: project + "/build/webserver/docker/image.tar")
        let nginx = parsed.packages["nginx-light"]!
        let badLock = lock1.replacingOccurrences(of: "nginx-light: {version: \"\(nginx.version)\"",
                                                 with: "nginx-light: {version: \"1.0-nxc-gone\"")
        XCTAssertNotEqual(badLock, lock1)
        try badLock.write(toFile: lockPath, atomically: true, encoding: .utf8)
        let bad = try s2.run(["build", "-f", "docker"], timeout: 1200)
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.output.contains("base system: reused"), "only the layer with nginx-light is rebuilt:\n\(bad.output)")
        XCTAssertTrue(bad.output.contains("composition.lock:\(nginx.line): error: packages.nginx-light: locked at version 1.0-nxc-gone, but the mirror"),
                      bad.output)
        XCTAssertTrue(bad.output.contains("https://snapshot.debian.org/archive/debian/"), bad.output)
        XCTAssertTrue(bad.output.contains("nxc lock --update"), bad.output)
        XCTAssertEqual(try String(contentsOfFile: lockPath, encoding: .utf8), badLock, "a failed build leaves the lock alone")
        XCTAssertEqual(try sha256(file: project + "/build/webserver/docker/image.tar"), imageBefore, "and the build folder")

        // 6. `nxc lock --update` resolves against the mirror again and prints what it changed.
        let u = try s2.run(["lock", "--update", "-f", "docker"], timeout: 2400)
        XCTAssertEqual(u.status, 0, u.output)
        XCTAssertTrue(u.output.contains("~ nginx-light 1.0-nxc-gone → \(nginx.version)"), u.output)
        let after = try LockFile.parse(try String(contentsOfFile: lockPath, encoding: .utf8), file: lockPath)
        XCTAssertEqual(after.packages["nginx-light"]?.version, nginx.version)
    }
}

/// The results of runs made on several threads at once, each in its own slot.
final class ParallelRuns: @unchecked Sendable {
    private let lock = NSLock()
    private var slots: [Result<(status: Int32, output: String), Error>?]
    init(_ count: Int) { slots = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ r: Result<(status: Int32, output: String), Error>) { lock.withLock { slots[i] = r } }
    var values: [Result<(status: Int32, output: String), Error>] {
        lock.withLock { slots.map { $0 ?? .failure(CocoaError(.featureUnsupported)) } }
    }
}
