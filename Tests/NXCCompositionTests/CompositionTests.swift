import Foundation
import XCTest
@testable import NXCComposition

final class CompositionTests: XCTestCase {
    func parse(_ text: String, name: String = "test") throws -> Composition {
        try Composition.parse(text, file: "composition.yaml", directory: NSTemporaryDirectory(), defaultName: name)
    }

    func testWebserverExample() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let c = try Composition.load(path: root.appendingPathComponent("compositions/webserver/composition.yaml").path)
        XCTAssertEqual(c.name, "webserver")
        XCTAssertEqual(c.roles.map(\.name), ["server", "client"])
        XCTAssertEqual(c.role(named: "client")?.hostNames(), ["client1", "client2"])
        XCTAssertEqual(c.role(named: "server")?.hostNames(), ["server"])
        XCTAssertEqual(c.role(named: "server")?.services.map(\.value), ["nginx.service"])
        XCTAssertEqual(c.allPackages, ["curl", "nginx-light", "wrk"])
        let file = try XCTUnwrap(c.role(named: "server")?.files.first)
        XCTAssertEqual(file.path, "/var/www/html/index.html")
        XCTAssertEqual(String(decoding: file.content, as: UTF8.self), "hello from nxc\n")
        XCTAssertEqual(file.mode, 0o644)
        XCTAssertNotNil(c.test)
    }

    func testDefaultsAndPositions() throws {
        let c = try parse("""
            roles:
              node:
                packages: [iproute2, curl]
                memory: 2G
                files:
                  /etc/motd: { content: "hi\\n", mode: "600" }
            """, name: "my-project")
        XCTAssertEqual(c.name, "my-project")
        XCTAssertEqual(c.distribution.suite, "bookworm")
        XCTAssertNil(c.distribution.mirror)
        let role = try XCTUnwrap(c.roles.first)
        XCTAssertEqual(role.count, 1)
        XCTAssertEqual(role.memoryMiB, 2048)
        XCTAssertEqual(role.files.first?.mode, 0o600)
        // Positions point at the value, 1-based.
        XCTAssertEqual(role.packages[1].location.line, 3)
        XCTAssertEqual(role.packages[1].key, "roles.node.packages[1]")
        XCTAssertEqual(c.location(ofPackage: "curl")?.location.line, 3)
    }

    func testEmptyRoleIsAllowed() throws {
        let c = try parse("roles:\n  hello:\n")
        XCTAssertEqual(c.roles.map(\.name), ["hello"])
        XCTAssertEqual(c.roles.first?.count, 1)
    }

    func testDefaultNameFromFolder() {
        XCTAssertEqual(Composition.defaultName(forFolder: "My_Project"), "my-project")
        XCTAssertEqual(Composition.defaultName(forFolder: "__"), "composition")
        XCTAssertEqual(Composition.defaultName(forFolder: "webserver"), "webserver")
    }

    func testHostnameAndPackageRules() {
        XCTAssertTrue(isHostname("client1"))
        XCTAssertFalse(isHostname("-a"))
        XCTAssertFalse(isHostname("a_b"))
        XCTAssertFalse(isHostname("Server"))
        XCTAssertFalse(isHostname(String(repeating: "a", count: 64)))
        XCTAssertTrue(isPackageName("libstdc++6"))
        XCTAssertTrue(isPackageName("nginx-light"))
        XCTAssertFalse(isPackageName("x"))
        XCTAssertFalse(isPackageName("Nginx"))
    }

    /// Services are kept as unit names, normalized by the rule the agent uses: `php8.2-fpm` was
    /// `php8.2-fpm` for the build (a dot: taken as a unit type) and `php8.2-fpm.service` for the agent.
    func testServicesAreUnitNames() throws {
        let c = try parse("roles:\n  web:\n    services: [nginx, php8.2-fpm, ssh.socket, getty@tty1, fstrim.timer]\n")
        XCTAssertEqual(c.roles[0].services.map(\.value),
                       ["nginx.service", "php8.2-fpm.service", "ssh.socket", "getty@tty1.service", "fstrim.timer"])
        XCTAssertEqual(c.roles[0].services[1].key, "roles.web.services[1]")
    }

    func project(_ files: [String: String]) throws -> String {
        let dir = NSTemporaryDirectory() + "nxc-source-\(UUID().uuidString.prefix(8))"
        for (name, content) in files {
            let path = dir + "/" + name
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try Data(content.utf8).write(to: URL(fileURLWithPath: path))
        }
        return dir
    }

    /// `source:` files inside the folder are read, through symlinks that stay inside and `..` that comes back.
    func testSourceInsideTheFolder() throws {
        let dir = try project(["files/motd": "hello\n", "composition.yaml": """
            roles:
              a:
                files:
                  /etc/motd: { source: files/motd }
                  /etc/motd2: { source: files/../files/motd }
                  /etc/motd3: { source: link }
            """])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createSymbolicLink(atPath: dir + "/link", withDestinationPath: "files/motd")
        let c = try Composition.load(path: dir + "/composition.yaml")
        XCTAssertEqual(c.roles[0].files.map { String(decoding: $0.content, as: UTF8.self) }, ["hello\n", "hello\n", "hello\n"])
    }

    /// One file over 16 MiB is refused without reading it (a sparse file of 16 MiB + 1 byte).
    func testSourceSizeLimit() throws {
        let dir = try project(["composition.yaml": "roles:\n  a:\n    files:\n      /big: { source: big }\n"])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let fd = open(dir + "/big", O_CREAT | O_WRONLY, 0o644)
        XCTAssertEqual(ftruncate(fd, off_t(FileLimits.each + 1)), 0)
        close(fd)
        XCTAssertThrowsError(try Composition.load(path: dir + "/composition.yaml")) { e in
            XCTAssertTrue("\(e)".hasSuffix("4:23: error: roles.a.files./big.source: source file 'big' is larger than 16 MiB (the limit for one file of a composition)"), "\(e)")
        }
    }

    /// The files of all roles add up to at most 64 MiB: one inline content of 0.9 MiB aliased 75 times is refused.
    func testFilesTotalLimit() {
        var text = "roles:\n  a:\n    files:\n      /f0: { content: &c \"" + String(repeating: "x", count: 900_000) + "\" }\n"
        for k in 1..<75 { text += "      /f\(k): { content: *c }\n" }
        XCTAssertThrowsError(try parse(text)) { e in
            XCTAssertTrue("\(e)".contains("the roles' files add up to more than 64 MiB (the limit for all files of a composition)"), "\(e)")
        }
    }

    /// Inputs of the corpus that are not kept in git: a symlink out of the folder, a file over the size limit.
    static func generatedInputs(in dir: String) throws {
        try FileManager.default.createSymbolicLink(atPath: dir + "/outside-link", withDestinationPath: "/etc/passwd")
        let padding = String(repeating: "# padding to go over the size limit of a composition\n", count: 20_000)
        try Data(("roles:\n  server:\n" + padding).utf8).write(to: URL(fileURLWithPath: dir + "/55-oversized.yaml"))
    }

    /// `state:` folders are kept as given; the corpus has the refused ones.
    func testStateFolders() throws {
        let c = try Composition.parse("roles:\n  server:\n    state: [/var/log/nginx, /srv/data, /home/u_1.x]\n", file: "c.yaml", directory: "/tmp", defaultName: "t")
        XCTAssertEqual(c.roles[0].state.map(\.value), ["/var/log/nginx", "/srv/data", "/home/u_1.x"])
        for bad in ["/", "/var/../etc", "/usr/local", "/var/log/", "/var/a b", "/run/x"] {
            XCTAssertNotNil(CompositionParser.statePathProblem(bad), bad)
        }
        XCTAssertNil(CompositionParser.statePathProblem("/var/lib/postgresql"))
    }

    /// Every file of the corpus fails with exactly the message in its `.expected` file. The corpus is
    /// copied to a temporary folder first, so that the generated inputs stay out of the source tree.
    func testBadCompositionCorpus() throws {
        let source = try XCTUnwrap(Bundle.module.resourceURL?.appendingPathComponent("BadCompositions"))
        let dir = NSTemporaryDirectory() + "nxc-corpus-\(UUID().uuidString.prefix(8))"
        try FileManager.default.copyItem(atPath: source.path, toPath: dir)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.generatedInputs(in: dir)
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".yaml") }.sorted()
        XCTAssertGreaterThanOrEqual(files.count, 55)
        for f in files {
            let expectedPath = dir + "/" + f.replacingOccurrences(of: ".yaml", with: ".expected")
            let expected = try String(contentsOfFile: expectedPath, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            do {
                // Through `load`, as `nxc check` reads it (size and file checks included); named as in the corpus.
                _ = try Composition.load(path: dir + "/" + f)
                XCTFail("\(f) was accepted; expected: \(expected)")
            } catch let e as CompositionError {
                let got = e.description.replacingOccurrences(of: dir + "/", with: "")
                XCTAssertEqual(got, expected, f)
                XCTAssertTrue(got.hasPrefix(f), "\(f): the error names the file")
            }
        }
    }
}
