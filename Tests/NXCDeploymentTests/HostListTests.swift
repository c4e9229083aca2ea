import Foundation
import XCTest
@testable import NXCDeployment

/// Machine files: a host or user that ssh would read as an option is refused, naming file and line.
final class HostListTests: XCTestCase {
    func testHostsAndUsersStartingWithDashAreRefused() {
        for (text, fragment) in [("node-1\n-v\n", "nodes:2: '-v': "),
                                 ("-oProxyCommand\n", "nodes:1: '-oProxyCommand': "),
                                 ("alice@-v:22\n", "nodes:1: 'alice@-v:22': "),
                                 ("[-v]:22\n", "nodes:1: '[-v]:22': "),
                                 ("-l@node-1\n", "nodes:1: '-l@node-1': ")] {
            XCTAssertThrowsError(try HostList.parse(text, file: "nodes")) { e in
                XCTAssertTrue("\(e)".contains(fragment) && "\(e)".contains("'-'"), "\(text.debugDescription): \(e)")
            }
        }
        XCTAssertEqual(try HostList.parse("node-1\nab-c\n", file: "nodes").map(\.name), ["node-1", "ab-c"])
    }

    /// `HOST MAC` lines (pxe): the MAC normalised, checked, and not given to two hosts.
    func testMACColumn() throws {
        let hosts = try HostList.parse("10.0.0.11 52:54:00:AB:cd:01\nroot@n2:2222\t52-54-00-ab-cd-02\nn3\n", file: "machines")
        XCTAssertEqual(hosts.map(\.mac), ["52:54:00:ab:cd:01", "52:54:00:ab:cd:02", nil])
        XCTAssertEqual(hosts[1].description, "root@n2:2222", "the MAC is not part of the host as shown")
        for (text, fragment) in [("n1 52:54:00:ab:cd\n", "machines:1: '52:54:00:ab:cd' is not a MAC address"),
                                 ("n1 52:54:00:ab:cd:0g\n", "machines:1: '52:54:00:ab:cd:0g' is not a MAC address"),
                                 ("n1 52:54:00:ab:cd:01 extra\n", "machines:1: 'n1 52:54:00:ab:cd:01 extra': one host per line, optionally followed by its MAC"),
                                 ("n1 52:54:00:ab:cd:01\nn2 52:54:00:AB:CD:01\n", "machines:2: MAC address 52:54:00:ab:cd:01 is also given to n1")] {
            XCTAssertThrowsError(try HostList.parse(text, file: "machines")) { e in
                XCTAssertTrue("\(e)".contains(fragment), "\(text.debugDescription): \(e)")
            }
        }
    }
}
