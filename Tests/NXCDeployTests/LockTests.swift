import Foundation
import XCTest
import NXCArchive
@testable import NXCBuild
@testable import NXCDeploy
@testable import NXCDeployment
@testable import NXCPipeline
import NXCStore

/// composition.lock: reading (errors name file, line and key), writing, the diff `nxc lock --update`
/// prints, the apt pins, dpkg/apt records, and the SBOM made from a lock.
final class LockTests: XCTestCase {
    let shaA = String(repeating: "a", count: 64)
    let shaB = String(repeating: "b", count: 64)

    func sample() -> LockFile {
        var l = LockFile(mirror: "http://deb.debian.org/debian", mirrorDate: "2026-07-11T10:16:37Z", suite: "bookworm",
                         architecture: "amd64", sourceDateEpoch: 1_795_651_200)
        l.record(flavour: "vm-ramdisk", installed: [
            InstalledPackage(name: "bash", version: "5.2.15-2+b7", architecture: "amd64", sha256: shaA),
            InstalledPackage(name: "libc6", version: "2.36-9+deb12u10", architecture: "amd64", sha256: shaB),
            InstalledPackage(name: "perl-base", version: "5.36.0-7+deb12u2", architecture: "amd64", sha256: shaA),
        ])
        l.record(flavour: "docker", installed: [
            InstalledPackage(name: "bash", version: "5.2.15-2+b7", architecture: "amd64", sha256: shaA),
            InstalledPackage(name: "libc6", version: "2.36-9+deb12u10", architecture: "amd64", sha256: shaB),
            InstalledPackage(name: "systemd", version: "1:252.38-1~deb12u1", architecture: "amd64", sha256: shaB),
        ])
        return l
    }

    func testRenderParseRoundTrip() throws {
        let l = sample()
        let text = l.render(composition: "webserver")
        let back = try LockFile.parse(text, file: "composition.lock")
        XCTAssertEqual(back, l)
        XCTAssertEqual(back.packages["systemd"]?.version, "1:252.38-1~deb12u1", "epochs survive (quoted)")
        XCTAssertEqual(back.flavours["docker"], ["bash", "libc6", "systemd"])
        // One line per package, sorted: diffs of locks are readable.
        let pkgLines = text.split(separator: "\n").filter { $0.hasPrefix("  ") && $0.contains("sha256:") }
        XCTAssertEqual(pkgLines.map { String($0.split(separator: ":")[0].dropFirst(2)) }, ["bash", "libc6", "perl-base", "systemd"])
        XCTAssertEqual(back.packages["libc6"]?.line, text.split(separator: "\n", omittingEmptySubsequences: false)
            .firstIndex { $0.hasPrefix("  libc6:") }.map { $0 + 1 })
        // Rendering is a function of the content.
        XCTAssertEqual(back.render(composition: "webserver"), text)
    }

    func testLongFlavourListsWrapAndParse() throws {
        var l = sample()
        let many = (1...120).map { InstalledPackage(name: "libexample\($0)", version: "1.\($0)", architecture: "amd64", sha256: shaA) }
        l.record(flavour: "g5k-image", installed: many)
        let text = l.render(composition: "x")
        XCTAssertTrue(text.split(separator: "\n").filter { !$0.contains("sha256") }.allSatisfy { $0.count <= 100 }, "wrapped")
        XCTAssertEqual(try LockFile.parse(text, file: "x.lock").flavours["g5k-image"]?.count, 120)
    }

    func testRecordDropsPackagesNoFlavourUses() {
        var l = sample()
        l.record(flavour: "vm-ramdisk", installed: [InstalledPackage(name: "bash", version: "5.2.15-2+b7", architecture: "amd64", sha256: shaA)])
        XCTAssertNil(l.packages["perl-base"], "only vm-ramdisk used it")
        XCTAssertNotNil(l.packages["libc6"], "docker still uses it")
    }

    func testChangesListAddedRemovedAndMoved() {
        let old = sample()
        var new = old
        new.packages["bash"]?.version = "5.2.15-2+b8"
        new.packages["perl-base"] = nil
        new.flavours["vm-ramdisk"] = ["bash", "libc6", "zlib1g"]
        new.packages["zlib1g"] = LockedPackage(version: "1:1.2.13.dfsg-1", architecture: "amd64", sha256: shaA)
        new.packages["libc6"]?.sha256 = shaA
        XCTAssertEqual(new.changes(from: old), [
            "~ bash 5.2.15-2+b7 → 5.2.15-2+b8",
            "~ libc6 2.36-9+deb12u10: .deb sha256 bbbbbbbbbbbb… → aaaaaaaaaaaa…",
            "- perl-base 5.36.0-7+deb12u2",
            "+ zlib1g 1:1.2.13.dfsg-1",
        ])
        XCTAssertEqual(old.changes(from: old), [])
    }

    /// Bad locks: each error names the file, the line and the key.
    func testBadLocksNameFileLineAndKey() {
        let good = sample().render(composition: "w")
        let cases: [(String, String)] = [
            (good.replacingOccurrences(of: "lock: 1", with: "lock: 7"), "composition.lock:4: error: lock: this nxc reads lock format 1"),
            (good.replacingOccurrences(of: "source_date_epoch: 1795651200", with: "source_date_epoch: soon"),
             "composition.lock:9: error: source_date_epoch: expected seconds since 1970 (an integer)"),
            (good.replacingOccurrences(of: "suite: \"bookworm\"\n", with: ""), "composition.lock:1: error: suite: missing"),
            (good.replacingOccurrences(of: "sha256: " + shaB, with: "sha256: 12ab"),
             "error: packages.libc6.sha256: expected 64 lowercase hex digits"),
            (good.replacingOccurrences(of: "  bash: {version: \"5.2.15-2+b7\", architecture:", with: "  bash: {version: \"5.2.15-2+b7\", arch:"),
             "error: packages.bash.arch: unknown field"),
            (good + "colour: blue\n", "error: colour: unknown key"),
            (good.replacingOccurrences(of: "  perl-base:", with: "  perl-base-gone:"),
             "error: flavours.vm-ramdisk: names 'perl-base', which has no entry under packages"),
            ("- just\n- a list\n", "composition.lock:1: error: a lock file is a mapping"),
        ]
        for (text, expected) in cases {
            XCTAssertThrowsError(try LockFile.parse(text, file: "composition.lock"), expected) { e in
                XCTAssertTrue("\(e)".contains(expected), "got: \(e)\nexpected: \(expected)")
                XCTAssertTrue("\(e)".hasPrefix("composition.lock"), "names the file: \(e)")
            }
        }
    }

    /// A lock may come from someone else (`nxc verify`): what reaches mmdebstrap, apt preferences or a
    /// path is checked. Before, each of these was accepted and used as it was.
    func testUntrustedLockValues() {
        let good = sample().render(composition: "w")
        let cases: [(String, String)] = [
            (good.replacingOccurrences(of: "mirror: \"http://deb.debian.org/debian\"", with: "mirror: \"deb [trusted=yes] http://evil.example/debian\""),
             "composition.lock:5: error: mirror: expected an http://, https:// or file:// URL, got 'deb [trusted=yes] http://evil.example/debian'"),
            (good.replacingOccurrences(of: "mirror: \"http://deb.debian.org/debian\"", with: "mirror: \"http://deb.debian.org/debian\\ndeb [trusted=yes] http://evil.example/debian\""),
             "composition.lock:5: error: mirror: 'http://deb.debian.org/debian\\ndeb [trusted=yes] http://evil.example/debian' is not a plain URL: it holds a line break"),
            (good.replacingOccurrences(of: "suite: \"bookworm\"", with: "suite: \"--customize-hook=sh\""),
             "composition.lock:7: error: suite: '--customize-hook=sh' is not a Debian suite name"),
            (good.replacingOccurrences(of: "architecture: \"amd64\"", with: "architecture: \"amd64 i386\""),
             "composition.lock:8: error: architecture: 'amd64 i386' is not a Debian architecture name"),
            (good.replacingOccurrences(of: "mirror_date: \"2026-07-11T10:16:37Z\"", with: "mirror_date: \"../../etc\""),
             "composition.lock:6: error: mirror_date: expected a UTC date such as 2026-07-11T10:16:37Z"),
            // A newline in a version would add lines to the apt preferences the build writes.
            (good.replacingOccurrences(of: "version: \"5.2.15-2+b7\"", with: "version: \"5.2.15-2+b7\\nPin: release *\\nPin-Priority: 1001\""),
             "error: packages.bash.version: '5.2.15-2+b7\\nPin: release *\\nPin-Priority: 1001' is not a Debian version"),
            (good.replacingOccurrences(of: "  bash: {version:", with: "  \"bash\\nPackage: *\": {version:"),
             "error: packages: 'bash\\nPackage: *' is not a Debian package name"),
            (good.replacingOccurrences(of: "architecture: amd64, sha256: " + shaB, with: "architecture: \"amd64\\n\", sha256: " + shaB),
             "error: packages.libc6.architecture: 'amd64\\n' is not a Debian architecture name"),
            // Flavour names become folder names.
            (good.replacingOccurrences(of: "  docker: [", with: "  ../../x: ["), "error: flavours: '../../x' is not a flavour name"),
            (good.replacingOccurrences(of: "  docker: [bash, libc6, systemd]", with: "  docker: [bash, \"-oAPT::x\", systemd]"),
             "error: flavours.docker: '-oAPT::x' is not a Debian package name"),
            (good.replacingOccurrences(of: "mirror: \"http", with: "mirorr: \"http"),
             "composition.lock:5: error: mirorr: unknown key; did you mean 'mirror'?"),
            (good.replacingOccurrences(of: "  bash: {version:", with: "  bash: {verison:"),
             "error: packages.bash.verison: unknown field; did you mean 'version'?"),
            (good + "suite: \"trixie\"\n", "error: suite: duplicate key (first at line 7)"),
            (good.replacingOccurrences(of: "packages:\n", with: "packages: [\n"), "composition.lock:"),
            ("lock: 1\npackages: " + String(repeating: "[", count: 5_000), "composition.lock:2:"),
        ]
        for (text, expected) in cases {
            XCTAssertThrowsError(try LockFile.parse(text, file: "composition.lock"), expected) { e in
                XCTAssertTrue("\(e)".contains(expected), "got: \(e)\nexpected: \(expected)")
                XCTAssertTrue("\(e)".hasPrefix("composition.lock"), "names the file: \(e)")
            }
        }
    }

    /// A lock over 16 MiB is refused before it is read (a sparse file), nesting before Yams recurses.
    func testLockLimits() throws {
        let path = NSTemporaryDirectory() + "nxc-lock-\(UUID().uuidString.prefix(8)).lock"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let fd = open(path, O_CREAT | O_WRONLY, 0o644)
        XCTAssertEqual(ftruncate(fd, 16 << 20 + 1), 0)
        close(fd)
        XCTAssertThrowsError(try LockFile.load(path: path)) { e in
            XCTAssertEqual("\(e)", "\(path): error: a lock file is limited to 16 MiB; this one has 16777217 bytes")
        }
        XCTAssertThrowsError(try LockFile.parse("lock: 1\npackages:\n" + String(repeating: "- ", count: 5_000), file: "x.lock")) { e in
            XCTAssertEqual("\(e)", "x.lock:3: error: nesting deeper than 64 levels (the limit for a lock file)")
        }
    }

    func testPreferencesPinEveryPackage() {
        let p = sample().aptPreferences()
        XCTAssertTrue(p.contains("Package: systemd\nPin: version 1:252.38-1~deb12u1\nPin-Priority: 1001\n"))
        XCTAssertEqual(p.components(separatedBy: "Pin-Priority: 1001").count - 1, 4)
    }

    func testSnapshotMirrorFromTheMirrorDate() {
        XCTAssertEqual(sample().snapshotMirror, "https://snapshot.debian.org/archive/debian/20260711T101637Z/")
        var l = sample()
        l.mirrorDate = nil
        XCTAssertEqual(l.snapshotMirror, "https://snapshot.debian.org/archive/debian/20261126T235959Z/", "end of the lock's day")
    }

    func testLockPathBesideTheComposition() {
        XCTAssertEqual(LockFile.path(forComposition: "/p/composition.yaml"), "/p/composition.lock")
        XCTAssertEqual(LockFile.path(forComposition: "paper.yaml"), "paper.lock")
        XCTAssertEqual(LockFile.todayEpoch(now: Date(timeIntervalSince1970: 1_795_700_000)), 1_795_651_200)
    }

    func testDpkgStatusAndIndexes() throws {
        let root = NSTemporaryDirectory() + "nxc-lock-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/var/lib/dpkg", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root + "/var/lib/apt/lists", withIntermediateDirectories: true)
        try """
            Package: bash
            Essential: yes
            Status: install ok installed
            Architecture: amd64
            Version: 5.2.15-2+b7
            Description: GNU Bourne Again SHell
             with a continuation line
             Package: not-a-field

            Package: removed-one
            Status: deinstall ok config-files
            Architecture: amd64
            Version: 1.0

            Package: tzdata
            Status: install ok installed
            Architecture: all
            Version: 2025b-0+deb12u1
            """.write(toFile: root + "/var/lib/dpkg/status", atomically: true, encoding: .utf8)
        try """
            Package: bash
            Version: 5.2.15-2+b7
            Architecture: amd64
            SHA256: \(shaA)

            Package: tzdata
            Version: 2025b-0+deb12u1
            Architecture: all
            SHA256: \(shaB)

            """.write(toFile: root + "/var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages",
                      atomically: true, encoding: .utf8)
        try "Origin: Debian\nDate: Sat, 11 Jul 2026 10:16:37 UTC\n".write(
            toFile: root + "/var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_InRelease", atomically: true, encoding: .utf8)
        let r = try DebianRecords.installedWithHashes(root: root)
        XCTAssertEqual(r.packages, [
            InstalledPackage(name: "bash", version: "5.2.15-2+b7", architecture: "amd64", sha256: shaA),
            InstalledPackage(name: "tzdata", version: "2025b-0+deb12u1", architecture: "all", sha256: shaB),
        ])
        XCTAssertEqual(r.mirrorDate, "2026-07-11T10:16:37Z")
        // A layer is consistent with a lock when every package the lock names has the locked version.
        var lock = sample()
        XCTAssertTrue(RootfsBuilder.consistent(root: root, lock: lock))
        lock.packages["bash"]?.version = "5.2.15-2+b2"
        XCTAssertFalse(RootfsBuilder.consistent(root: root, lock: lock))
        XCTAssertTrue(RootfsBuilder.consistent(root: root, lock: nil))
    }

    func testSBOMIsCycloneDXAndStable() throws {
        let bytes = try SBOM.cycloneDX(composition: "webserver", lock: sample())
        XCTAssertEqual(bytes, try SBOM.cycloneDX(composition: "webserver", lock: sample()), "same lock, same bytes")
        let doc = try JSONSerialization.jsonObject(with: Data(bytes)) as! [String: Any]
        XCTAssertEqual(doc["bomFormat"] as? String, "CycloneDX")
        XCTAssertEqual(doc["specVersion"] as? String, "1.5")
        let serial = doc["serialNumber"] as! String
        XCTAssertNotNil(serial.range(of: "^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$", options: .regularExpression), serial)
        let comps = doc["components"] as! [[String: Any]]
        XCTAssertEqual(comps.count, 4)
        let systemd = comps.first { $0["name"] as? String == "systemd" }!
        XCTAssertEqual(systemd["purl"] as? String, "pkg:deb/debian/systemd@1%3A252.38-1~deb12u1?arch=amd64&distro=debian-bookworm")
        XCTAssertEqual((systemd["hashes"] as! [[String: String]]).first, ["alg": "SHA-256", "content": shaB])
        let bash = comps.first { $0["name"] as? String == "bash" }!
        XCTAssertEqual((bash["properties"] as! [[String: String]]).first?["value"], "docker,vm-ramdisk")
        XCTAssertEqual((doc["metadata"] as! [String: Any])["timestamp"] as? String, "2026-11-26T00:00:00Z")
    }

    func testExportArchiveName() {
        XCTAssertEqual(Export.archiveName("/tmp/paper-2026.tar.zst"), "paper-2026")
        XCTAssertEqual(Export.archiveName("x.tzst"), "x")
    }
}
