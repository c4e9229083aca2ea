import Foundation
import XCTest
@testable import NXCDeploy
import NXCFlavours

/// The flavour of commands given no `-f` is data: the file that says `default: true`, in the first
/// folder of the search path that has one.
final class DefaultFlavourTests: XCTestCase {
    var scratch = ""

    override func setUpWithError() throws {
        scratch = NSTemporaryDirectory() + "nxc-default-flavour-\(getpid())-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: scratch + "/flavours", withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: scratch) }

    func write(_ name: String, default isDefault: Bool?) throws {
        var text = "name: \(name)\nartefact: ramdisk\nstart: qemu\n"
        if let isDefault { text += "default: \(isDefault)\n" }
        try Data(text.utf8).write(to: URL(fileURLWithPath: "\(scratch)/flavours/\(name).yaml"))
    }

    func testShippedDefaultIsVMRamdisk() throws {
        XCTAssertEqual(try Flavour.defaultName(project: scratch), "vm-ramdisk")
        XCTAssertEqual(Flavour.all(project: scratch).filter(\.isDefault).map(\.name), ["vm-ramdisk"], "one shipped file says default")
    }

    func testProjectChoosesItsOwn() throws {
        try write("laptop", default: true)
        try write("other", default: false)
        XCTAssertEqual(try Flavour.defaultName(project: scratch), "laptop")
    }

    func testTwoDefaultsInOneFolderAreRefused() throws {
        try write("one", default: true)
        try write("two", default: true)
        XCTAssertThrowsError(try Flavour.defaultName(project: scratch)) { e in
            let m = "\(e)"
            XCTAssertTrue(m.contains("/flavours/one.yaml and ") && m.contains("/flavours/two.yaml both say default: true"), m)
        }
    }

    /// A project file that shadows the shipped default without saying `default: true` leaves no
    /// default: the error says how to choose rather than picking another flavour silently.
    func testShadowedDefaultSaysHowToChoose() throws {
        try write("vm-ramdisk", default: nil)
        XCTAssertThrowsError(try Flavour.defaultName(project: scratch)) { e in
            XCTAssertTrue("\(e)".contains("no flavour file says default: true") && "\(e)".contains("give -f FLAVOUR"), "\(e)")
        }
    }
}
