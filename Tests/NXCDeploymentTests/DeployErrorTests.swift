import Foundation
import XCTest
@testable import NXCDeployment

/// Errors carry their context as values (path, flavour, errno, the program's own error) and print
/// as they did when they were strings.
final class DeployErrorTests: XCTestCase {
    func testValuesPrintAsBefore() {
        XCTAssertEqual("\(DeployError.notBuilt(path: "/p/build/web/docker/image.id", flavour: "docker"))",
                       "error: /p/build/web/docker/image.id is missing; run `nxc build -f docker` first")
        XCTAssertEqual("\(DeployError.file("write", path: "/p/.nxc/run/x/state.json", reason: "No space left on device"))",
                       "error: cannot write /p/.nxc/run/x/state.json: No space left on device")
        XCTAssertEqual("\(DeployError.systemCall("socket", errno: EMFILE, context: "HTTP server"))",
                       "error: HTTP server: socket: Too many open files")
        XCTAssertEqual("\(DeployError.systemCall("pipe", errno: EMFILE))", "error: pipe: Too many open files")
        XCTAssertEqual("\(DeployError.tooManyNodes(count: 300, limit: 250, unit: "VMs"))",
                       "error: at most 250 VMs per deployment, asked for 300")
        XCTAssertEqual("\(DeployError.badInput("machines:3", problem: "'a b': one host per line, without spaces"))",
                       "error: machines:3: 'a b': one host per line, without spaces")
        XCTAssertEqual("\(DeployError.needsRoot(flavour: "nspawn", because: "overlay mounts need it"))",
                       "error: flavour nspawn runs as root (overlay mounts need it); run nxc start as root")
        struct Failed: Error, CustomStringConvertible { var description: String { "bsdtar failed with exit status 1" } }
        XCTAssertEqual("\(DeployError.commandFailed("unpacking a into t", underlying: Failed()))",
                       "error: unpacking a into t: bsdtar failed with exit status 1")
    }

    /// The value keeps what a caller may act on.
    func testContextIsThereToMatch() {
        let e: Error = DeployError.notBuilt(path: "/b/kernel", flavour: "vm-ramdisk")
        guard case DeployError.notBuilt(let path, let flavour) = e else { return XCTFail("\(e)") }
        XCTAssertEqual(path, "/b/kernel")
        XCTAssertEqual(flavour, "vm-ramdisk")
    }
}
