import Foundation
import XCTest
@testable import NXCBuild
@testable import NXCComposition
@testable import NXCDeploy
@testable import NXCDeployment
@testable import NXCFlavours

/// The deployment's secret: drawn per start, 0600, delivered on stdin to the real agent, and found
/// nowhere else (deployment document, launch argv, build folder, other run files).
final class NodeSecretTests: XCTestCase {
    var work = ""

    override func setUpWithError() throws {
        work = NSTemporaryDirectory() + "nxc-secret-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: work)
    }

    /// The agent built beside the tests (`swift build` builds it).
    func agent() throws -> String {
        for dir in [".build/debug", ".build/release"] {
            let p = DeployTests.repo + "/" + dir + "/nxc-agent"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        throw XCTSkip("nxc-agent is not built; run `swift build` first")
    }

    func testEachStartDrawsANewPrivateSecret() throws {
        let a = try NodeSecret.create(in: work)
        let first = try Data(contentsOf: URL(fileURLWithPath: a))
        XCTAssertEqual(first.count, 32)
        var st = stat()
        XCTAssertEqual(stat(a, &st), 0)
        XCTAssertEqual(st.st_mode & 0o777, 0o600)
        let b = try NodeSecret.create(in: work)
        XCTAssertEqual(a, b)
        XCTAssertNotEqual(try Data(contentsOf: URL(fileURLWithPath: b)), first, "a new start, a new secret")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: work), ["secret"], "no temporary file left")
    }

    /// Delivered on standard input to `nxc-agent secret install` on each node (here the real agent
    /// under NXC_AGENT_ROOT, one root per node); derived keys agree across nodes.
    func testDeliveryReachesTheAgentOnStdinOnly() async throws {
        let agent = try agent()
        let run = work + "/run"
        try FileManager.default.createDirectory(atPath: run, withIntermediateDirectories: true)
        let file = try NodeSecret.create(in: run)
        let secret = try Data(contentsOf: URL(fileURLWithPath: file))
        let nodes = ["server", "client1", "client2"]
        let recorded = ArgvLog()
        let root = work
        let failures = await NodeSecret.deliver(nodes: nodes, file: file) { node in
            let argv = ["env", "NXC_AGENT_ROOT=\(root)/\(node)", agent] + Array(NodeSecret.installCommand.dropFirst())
            recorded.add(argv)
            return argv
        }
        XCTAssertTrue(failures.isEmpty, "\(failures)")
        var keys: Set<String> = []
        for node in nodes {
            let kept = work + "/\(node)/run/nxc/secret"
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: kept)), secret, node)
            var st = stat()
            XCTAssertEqual(stat(kept, &st), 0)
            XCTAssertEqual(st.st_mode & 0o777, 0o600, node)
            let (status, out) = try Command.status(["env", "NXC_AGENT_ROOT=\(work)/\(node)", agent, "secret", "derive", "munge"], timeout: 30)
            XCTAssertEqual(status, 0, out)
            keys.insert(out.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        XCTAssertEqual(keys.count, 1, "every node derives the same munge key")
        for argv in recorded.all { XCTAssertNil(Self.leak(of: secret, in: Data(argv.joined(separator: "\0").utf8)), "\(argv)") }
    }

    func testAFailedDeliveryNamesTheNode() async throws {
        let file = try NodeSecret.create(in: work)
        let failures = await NodeSecret.deliver(nodes: ["ok", "broken"], file: file) { node in
            node == "broken" ? ["sh", "-c", "cat > /dev/null; echo 'nxc-agent: unknown command' >&2; exit 64"] : ["sh", "-c", "cat > /dev/null"]
        }
        XCTAssertEqual(failures.map(\.node), ["broken"])
        XCTAssertTrue(failures.first?.reason.contains("not installed: nxc-agent: unknown command") == true, "\(failures)")
    }

    /// What a vm-ramdisk start writes and runs: the deployment document (file and inline form),
    /// the build folder, QEMU's argv from launch.sh (a stub QEMU records it) and the run folder's
    /// other files hold no form of the secret.
    func testTheSecretIsNowhereElse() throws {
        let c = try Composition.load(path: DeployTests.repo + "/compositions/webserver/composition.yaml")
        let flavour = try Flavour.load(path: DeployTests.repo + "/flavours/vm-ramdisk.yaml")
        let build = work + "/build", run = work + "/run", stubs = work + "/stubs"
        for d in [build, run, stubs] { try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true) }
        _ = try QemuStart().prepare(buildDirectory: build, composition: c, flavour: flavour)
        let nodes = try RoleDistribution.resolve(c, overrides: [])
        let doc = QemuStart.deployment(composition: c.name, flavour: flavour.name, nodes: nodes,
                                       keys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKey user@host"],
                                       ports: ["server": 10022, "client1": 10023, "client2": 10024])
        try writeAtomically(try doc.encoded(), to: work + "/deploy.json")
        try writeAtomically(try doc.encoded(pretty: false), to: run + "/deployment.json")
        let secret = try Data(contentsOf: URL(fileURLWithPath: try NodeSecret.create(in: run)))

        let qemu = stubs + "/qemu-system-x86_64"
        try Data("#!/bin/sh\nfor a in \"$@\"; do printf '%s\\0' \"$a\"; done > \"$NXC_ARGV\"\n".utf8).write(to: URL(fileURLWithPath: qemu))
        chmod(qemu, 0o755)
        let env = ["PATH": stubs + ":/usr/bin:/bin", "NXC_NODE": "server", "NXC_INDEX": "1",
                   "NXC_DEPLOYMENT": run + "/deployment.json", "NXC_SWITCH": run + "/switch",
                   "NXC_CONSOLE": run + "/server.console.log", "NXC_PIDFILE": run + "/server.pid",
                   "NXC_ARGV": work + "/qemu.argv"]
        let (status, out) = try Command.status([build + "/launch.sh"], environment: env, timeout: 30)
        XCTAssertEqual(status, 0, out)
        let argv = try Data(contentsOf: URL(fileURLWithPath: work + "/qemu.argv"))
        XCTAssertTrue(String(decoding: argv, as: UTF8.self).contains("nxc.deployment="), "the stub saw the launch")
        XCTAssertNil(Self.leak(of: secret, in: argv), "QEMU's argv")

        var checked = [work + "/deploy.json", work + "/qemu.argv"]
        for dir in [build, run] {
            for f in try FileManager.default.subpathsOfDirectory(atPath: dir) where !(dir == run && f == NodeSecret.fileName) {
                checked.append(dir + "/" + f)
            }
        }
        XCTAssertTrue(checked.contains(build + "/launch.sh") && checked.contains(run + "/deployment.json"))
        for path in checked {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), !isDir.boolValue else { continue }
            XCTAssertNil(Self.leak(of: secret, in: try Data(contentsOf: URL(fileURLWithPath: path))), path)
        }
    }

    /// The slurm template's munge key comes from the secret, not from the (public) deployment document.
    func testSlurmTemplateDerivesTheMungeKeyFromTheSecret() throws {
        let c = try Composition.load(path: DeployTests.repo + "/templates/slurm/composition.yaml")
        for role in c.roles {
            guard let dropIn = role.files.first(where: { $0.path == "/etc/systemd/system/munge.service.d/nxc-key.conf" }) else {
                return XCTFail("role \(role.name) has no munge key drop-in")
            }
            let text = String(decoding: dropIn.content, as: UTF8.self)
            XCTAssertTrue(text.contains("/usr/sbin/nxc-agent secret derive munge --wait "), text)
            XCTAssertFalse(text.contains("deployment.json"), "the munge key must not come from the deployment document: \(text)")
        }
    }

    /// Which form of the secret (raw, hex, base64) `data` holds, if any.
    static func leak(of secret: Data, in data: Data) -> String? {
        let hex = secret.map { String(format: "%02x", $0) }.joined()
        let forms: [(String, Data)] = [("raw", secret), ("hex", Data(hex.utf8)), ("HEX", Data(hex.uppercased().utf8)),
                                       ("base64", Data(secret.base64EncodedString().utf8))]
        return forms.first { data.range(of: $0.1) != nil }?.0
    }

    final class ArgvLog: @unchecked Sendable {
        private let lock = NSLock()
        private var argvs: [[String]] = []
        func add(_ a: [String]) { lock.lock(); argvs.append(a); lock.unlock() }
        var all: [[String]] { lock.lock(); defer { lock.unlock() }; return argvs }
    }
}
