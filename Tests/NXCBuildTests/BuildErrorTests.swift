import XCTest
import NXCComposition
@testable import NXCBuild

/// Build errors carry their context as values and print in the forms users see.
final class BuildErrorTests: XCTestCase {
    func testEveryCaseSaysWhereAndWhat() {
        let entry = Located("a;b", at: SourceLocation(file: "/p/composition.yaml", line: 7, column: 9), key: "roles.server.services[0]")
        XCTAssertEqual("\(BuildError.badEntry(entry, problem: "is not a systemd unit name"))",
                       "/p/composition.yaml:7:9: error: roles.server.services[0]: 'a;b' is not a systemd unit name")
        XCTAssertEqual("\(BuildError.imageLacks("kernel in /boot", flavour: "g5k-image", package: "linux-image-amd64"))",
                       "error: the image has no kernel in /boot; flavour g5k-image must install linux-image-amd64")
        XCTAssertEqual("\(BuildError.imageLacks("kernel modules in /r/usr/lib/modules", flavour: nil, package: "linux-image-amd64"))",
                       "error: the image has no kernel modules in /r/usr/lib/modules; the flavour must install linux-image-amd64")
        XCTAssertEqual("\(BuildError.lockMismatch(lock: "/p/composition.lock", differences: "  curl: 8.1 in the lock, 8.2 built"))",
                       "error: the build does not match /p/composition.lock:\n  curl: 8.1 in the lock, 8.2 built")
        XCTAssertEqual("\(BuildError.notLockable(package: "curl", version: "8.1", root: "/s/rootfs"))",
                       "error: curl 8.1 is installed in /s/rootfs but no apt index there lists its .deb; cannot lock it")
        XCTAssertEqual("\(BuildError.badInput("/p/composition.lock", problem: "does not exist yet"))", "error: /p/composition.lock: does not exist yet")
        XCTAssertEqual("\(BuildError.agentMissing)", "error: the nxc-agent binary was not found beside nxc; build it (`make`) or set NXC_AGENT")
    }
}
