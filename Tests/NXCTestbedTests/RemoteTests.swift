import Foundation
import XCTest
@testable import NXCDeployment
@testable import NXCTestbed

/// SSH argv: `--` before the host, so that no host or command is ever read as an ssh option.
final class RemoteTests: XCTestCase {
    static let identity = SSHIdentity(privateKey: "/k/id", publicKey: "ssh-ed25519 AAAA k")

    func testHostComesAfterDoubleDash() {
        let ep = Deployment.SSHEndpoint(host: "-oProxyCommand=touch${IFS}x", port: 22)
        for command in [["-v"], []] {
            let argv = SSH.argv(endpoint: ep, identity: Self.identity, knownHosts: "/k/known", command: command, interactive: false)
            let dash = argv.firstIndex(of: "--")
            XCTAssertEqual(dash.map { argv[$0 + 1] }, ep.host, "\(argv)")
            XCTAssertEqual(dash.map { Array(argv[($0 + 2)...]) }, command.isEmpty ? [] : ["-v"], "\(argv)")
        }
    }
}
