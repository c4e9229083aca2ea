import Foundation
import XCTest
import NXCComposition
@testable import NXCBuild

/// What reaches mmdebstrap and apt: nothing can turn signature checks off, and services are
/// looked up by the rule the agent uses.
final class RootfsBuilderSourcesTests: XCTestCase {
    /// Every option mmdebstrap gets is one of these; none of them weakens apt's checks (no
    /// `trusted=yes`, `Acquire::AllowInsecureRepositories`, `--allow-unauthenticated`, `--keyring`,
    /// `--skip=check/signed-by`, hooks other than the upload of the lock's preferences).
    static let allowedOptions = ["--mode=", "--variant=minbase", "--architectures=", "--components=",
                                 "--aptopt=Acquire::Retries \"3\"", "--aptopt=APT::Install-Recommends \"false\"",
                                 "--dpkgopt=force-unsafe-io", "--skip=cleanup/apt/lists", "--format=tar", "--include=",
                                 "--setup-hook=upload "]

    func testSignaturesAreAlwaysChecked() throws {
        let req = RootfsRequest(distribution: Distribution(suite: "bookworm", components: ["main", "contrib"]),
                                mirror: "https://deb.debian.org/debian", basePackages: ["systemd-sysv"], packages: ["curl"])
        for mode in [RootfsMode.root, .unshare, .fakechroot] {
            let argv = RootfsBuilder.mmdebstrapArguments(req, packages: ["systemd-sysv", "curl"], mode: mode,
                                                         target: "/store/tmp/root", preferences: "/tmp/nxc-lock-abc123")
            let start = try XCTUnwrap(argv.firstIndex(of: "mmdebstrap"))
            let options = argv[(start + 1)..<(argv.count - 3)]
            for o in options {
                XCTAssertTrue(Self.allowedOptions.contains { o.hasPrefix($0) }, "unexpected option \(o)")
                XCTAssertFalse(o.contains("\n"), o)
            }
            let lowered = argv.joined(separator: " ").lowercased()
            for weak in ["trusted", "allowinsecure", "allowunauthenticated", "allow-unauthenticated", "allowdowngradetoinsecure",
                         "keyring", "check/signed-by", "check-valid-until", "--customize-hook", "--essential-hook"] {
                XCTAssertFalse(lowered.contains(weak), "\(weak) in \(argv)")
            }
            // Suite, target and mirror: positional, none of them an option, the mirror one URL by the mirror rule.
            let positional = Array(argv.suffix(3))
            XCTAssertEqual(positional, ["bookworm", "/store/tmp/root", "https://deb.debian.org/debian"])
            XCTAssertFalse(positional.contains { $0.hasPrefix("-") })
            XCTAssertNoThrow(try DebianSource.validateMirror(positional[2]))
        }
    }

    /// What the request is made of is refused where it enters when it could be more than one value.
    func testHostileSourceValuesAreRefusedByTheRules() {
        for mirror in ["deb [trusted=yes] http://evil.example/debian", "http://deb.debian.org/debian\ndeb [trusted=yes] http://evil.example/ x",
                       "--setup-hook=sh", "-", "/etc/apt/sources.list", "http://x/debian bookworm main", "http://x/\"a\"", "http://x/#"] {
            XCTAssertThrowsError(try DebianSource.validateMirror(mirror), mirror)
        }
        for suite in ["--customize-hook=sh", "bookworm main", "bookworm\n", ""] {
            XCTAssertThrowsError(try DebianSource.validateSuite(suite), suite)
        }
        for component in ["main,contrib", "-x", "main contrib"] {
            XCTAssertThrowsError(try DebianSource.validateComponent(component), component)
        }
        for arch in ["amd64,i386", "AMD64", "-x", "amd64\n"] {
            XCTAssertThrowsError(try DebianSource.validateArchitecture(arch), arch)
        }
        for version in ["1.0\nPin: release *", "1.0 ", "a1.0", "x:1.0", ""] {
            XCTAssertThrowsError(try DebianSource.validateVersion(version), version)
        }
        for good in ["http://deb.debian.org/debian", "https://snapshot.debian.org/archive/debian/20260711T101637Z/",
                     "file:///srv/mirror/debian", "http://[::1]:3142/debian", "http://user:pw@mirror.example:8080/debian?x=1"] {
            XCTAssertNoThrow(try DebianSource.validateMirror(good), good)
        }
        XCTAssertNoThrow(try DebianSource.validateVersion("1:252.38-1~deb12u1"))
        XCTAssertNoThrow(try DebianSource.validateVersion("2025b-0+deb12u1"))
        XCTAssertNoThrow(try DebianSource.validateSuite("bookworm-backports"))
        XCTAssertNoThrow(try DebianSource.validateComponent("non-free-firmware"))
    }

    func image(_ units: [String]) throws -> String {
        let root = NSTemporaryDirectory() + "nxc-units-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: root + "/usr/lib/systemd/system", withIntermediateDirectories: true)
        for u in units { FileManager.default.createFile(atPath: root + "/usr/lib/systemd/system/" + u, contents: Data()) }
        return root
    }

    func composition(_ services: [String]) -> Composition {
        let here = SourceLocation(file: "composition.yaml", line: 3, column: 16)
        let role = Role(name: "web", services: services.enumerated().map { Located($1, at: here, key: "roles.web.services[\($0)]") },
                        location: here)
        return Composition(name: "w", file: "composition.yaml", roles: [role])
    }

    /// `php8.2-fpm` is `php8.2-fpm.service` for the agent; the build looked for a unit file named
    /// `php8.2-fpm` (a dot taken for a unit type) and refused an image that has the service.
    func testServicesAreLookedUpAsTheAgentNamesThem() throws {
        let root = try image(["php8.2-fpm.service", "nginx.service", "getty@.service", "ssh.socket"])
        defer { try? FileManager.default.removeItem(atPath: root) }
        XCTAssertNoThrow(try RootfsBuilder.checkServices(of: composition(["php8.2-fpm", "nginx", "getty@tty1", "ssh.socket"]), root: root))
        XCTAssertThrowsError(try RootfsBuilder.checkServices(of: composition(["php8.2-fpm", "apache2"]), root: root)) { e in
            XCTAssertEqual("\(e)", "composition.yaml:3:16: error: roles.web.services[1]: no package of role 'web' provides the systemd unit 'apache2.service'")
        }
        XCTAssertThrowsError(try RootfsBuilder.checkServices(of: composition(["a;b"]), root: root)) { e in
            XCTAssertTrue("\(e)".contains("roles.web.services[0]: 'a;b' is not a systemd unit name"), "\(e)")
        }
    }
}
