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
