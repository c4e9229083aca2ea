import Foundation
import XCTest
import NXCFlavours
@testable import NXCDeploy
@testable import NXCDeployment

/// The registry is the one list of artefact kinds and start methods: every name is the
/// implementation's own, unique, accepted by the flavour loader, and what the shipped flavours and a
/// deployment's state resolve through.
final class RegistryTests: XCTestCase {
    func testNamesAreUniqueAndFlavourFilesMayGiveThem() {
        let kinds = Registry.artefactKinds.map(\.name)
        let methods = Registry.startMethods.map(\.name)
        XCTAssertEqual(Set(kinds).count, kinds.count, "\(kinds)")
        XCTAssertEqual(Set(methods).count, methods.count, "\(methods)")
        XCTAssertEqual(Registry.flavourNames.artefactKinds, kinds)
        XCTAssertEqual(Registry.flavourNames.startMethods, methods)
        // No key is read by two settings types (kinds may share one: netroot reads the ramdisk's), and
        // none is one every flavour has.
        var types: [any FlavourSettings.Type] = []
        for t in Registry.artefactKinds.map({ $0.settingsType }) + Registry.startMethods.map({ $0.settingsType })
            where !types.contains(where: { ObjectIdentifier($0) == ObjectIdentifier(t) }) {
            types.append(t)
        }
        let keys = types.flatMap { $0.keys }
        XCTAssertEqual(Set(keys).count, keys.count, "\(keys)")
        for k in keys { XCTAssertFalse(["name", "artefact", "start", "packages", "files"].contains(k), k) }
        for name in kinds + methods {
            XCTAssertTrue(name.allSatisfy { $0.isLowercase || $0.isNumber || $0 == "-" }, name)
        }
    }

    func testShippedFlavoursResolveThroughTheRegistry() throws {
        let flavours = Flavour.scan(project: DeployTests.repo)
        XCTAssertEqual(flavours.errors.count, 0, "\(flavours.errors)")
        XCTAssertGreaterThanOrEqual(flavours.flavours.count, 5)
        for f in flavours.flavours {
            XCTAssertEqual(f.artefactKind.name, f.artefact, f.name)
            XCTAssertEqual(f.startMethod.name, f.start, f.name)
        }
        // Every kind and method serves at least one shipped flavour.
        XCTAssertEqual(Set(flavours.flavours.map(\.artefact)), Set(Registry.artefactKinds.map(\.name)))
        XCTAssertEqual(Set(flavours.flavours.map(\.start)), Set(Registry.startMethods.map(\.name)))
    }

    /// A deployment's state names its method; exec, status and stop find the method by that name.
    func testStateNamesTheMethodThatWroteIt() {
        for m in Registry.startMethods {
            XCTAssertEqual(Registry.startMethod(named: m.name)?.name, m.name)
        }
        XCTAssertNil(Registry.startMethod(named: "lxc"))
    }

    /// A name outside the registry is refused with file, line, key, the nearest name and the list.
    func testUnknownNamesAreRefusedWithTheRegistryList() throws {
        let dir = NSTemporaryDirectory() + "nxc-registry-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let p = dir + "/x.yaml"
        try Data("name: x\nartefact: tree\nstart: nspwan\npackages: [systemd-sysv]\n".utf8).write(to: URL(fileURLWithPath: p))
        XCTAssertThrowsError(try Flavour.load(path: p)) { e in
            XCTAssertTrue("\(e)".hasPrefix(p + ":3:8: error: start: unknown start method 'nspwan'"), "\(e)")
            XCTAssertTrue("\(e)".contains("nspawn"), "\(e)")
        }
        try Data("name: x\nstart: nspawn\npackages: [systemd-sysv]\n".utf8).write(to: URL(fileURLWithPath: p))
        XCTAssertThrowsError(try Flavour.load(path: p)) { e in
            XCTAssertTrue("\(e)".contains("one of " + Registry.artefactKinds.map(\.name).joined(separator: ", ")), "\(e)")
        }
    }

    /// The flavour fuzz target is built without NXCDeploy and lists the names itself: the same list.
    func testFuzzTargetListsTheRegistryNames() throws {
        let text = try String(contentsOfFile: DeployTests.repo + "/Fuzz/Flavour/FlavourFuzz.swift", encoding: .utf8)
        func quoted(_ names: [String]) -> String { "[" + names.map { "\"\($0)\"" }.joined(separator: ", ") + "]" }
        XCTAssertTrue(text.contains("artefactKinds: " + quoted(Registry.artefactKinds.map(\.name))), "Fuzz/Flavour/FlavourFuzz.swift")
        XCTAssertTrue(text.contains("startMethods: " + quoted(Registry.startMethods.map(\.name))), "Fuzz/Flavour/FlavourFuzz.swift")
        let settings = Registry.artefactKinds.filter { !$0.settingsType.keys.isEmpty }
            .map { "\"\($0.name)\": \(String(describing: $0.settingsType)).self" }
        XCTAssertTrue(text.contains("kindSettings: [" + settings.joined(separator: ", ") + "]"), "Fuzz/Flavour/FlavourFuzz.swift: \(settings)")
        let methodSettings = Registry.startMethods.filter { !$0.settingsType.keys.isEmpty }
            .map { "\"\($0.name)\": \(String(describing: $0.settingsType)).self" }
        XCTAssertTrue(text.contains("methodSettings: [" + methodSettings.joined(separator: ", ") + "]"),
                      "Fuzz/Flavour/FlavourFuzz.swift: \(methodSettings)")
    }
}
