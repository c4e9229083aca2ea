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
}
