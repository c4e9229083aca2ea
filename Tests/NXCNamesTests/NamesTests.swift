import XCTest
import NXCNames

final class UnitNameTests: XCTestCase {
    func testNormalizeAddsServiceOnlyWithoutAUnitType() {
        XCTAssertEqual(UnitName.normalize("nginx"), "nginx.service")
        XCTAssertEqual(UnitName.normalize("ssh.socket"), "ssh.socket")
        XCTAssertEqual(UnitName.normalize("php8.2-fpm"), "php8.2-fpm.service")
        XCTAssertEqual(UnitName.normalize("getty@tty1"), "getty@tty1.service")
        XCTAssertEqual(UnitName.normalize("systemd-networkd.service"), "systemd-networkd.service")
    }

    func testRefusesWhatCouldBeAnOptionPathOrShellWord() {
        for bad in ["a;b", "-H evil", "-H", "a/b", ".hidden", "", "a b", "$(x)", "nginx\n", ".service", String(repeating: "a", count: 250)] {
            XCTAssertNil(UnitName.normalize(bad), bad)
        }
    }

    /// A template is not a unit to start: `getty@.service` was accepted and then failed on the node.
    func testRefusesTemplatesWithoutAnInstance() {
        for bad in ["getty@.service", "getty@", "@tty1", "x@.socket"] {
            XCTAssertNil(UnitName.normalize(bad), bad)
        }
        XCTAssertEqual(UnitName.normalize("getty@tty1.service"), "getty@tty1.service")
        XCTAssertEqual(UnitName.normalize("systemd-fsck@dev-disk-by\\x2dlabel-root"), "systemd-fsck@dev-disk-by\\x2dlabel-root.service")
    }

    func testProblemSaysWhy() {
        XCTAssertNil(UnitName.problem("nginx"))
        XCTAssertEqual(UnitName.problem("getty@"), "is a template; name an instance of it (e.g. getty@tty1)")
        XCTAssertEqual(UnitName.problem("getty@.service"), "is a template; name an instance of it (e.g. getty@tty1)")
        XCTAssertTrue(UnitName.problem("a;b")?.hasPrefix("is not a systemd unit name") == true)
        XCTAssertTrue(UnitName.problem("-H evil")?.hasPrefix("is not a systemd unit name") == true)
    }

    func testTemplate() {
        XCTAssertEqual(UnitName.template(of: "getty@tty1.service"), "getty@.service")
        XCTAssertNil(UnitName.template(of: "nginx.service"))
        XCTAssertNil(UnitName.template(of: "getty@.service"))
    }
}

final class SuggestionTests: XCTestCase {
    func testNearestKey() {
        let keys = ["name", "description", "distribution", "packages", "roles", "test"]
        XCTAssertEqual(Suggestion.nearest("pakages", among: keys), "packages")
        XCTAssertEqual(Suggestion.nearest("role", among: keys), "roles")
        XCTAssertEqual(Suggestion.nearest("Packages", among: keys), "packages")
        XCTAssertNil(Suggestion.nearest("zzzzzzzz", among: keys))
        XCTAssertEqual(Suggestion.hint("pakages", among: keys), "; did you mean 'packages'?")
        XCTAssertEqual(Suggestion.hint("qqq", among: keys), "")
    }
}
