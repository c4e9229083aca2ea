import Foundation
import XCTest
@testable import NXCDeploy
@testable import NXCDeployment

/// `nxc exec` output: one node's stdout is the command's own (a script can capture it), several
/// nodes' lines carry their node; under the driver, failures are marked on stderr only.
final class OperationsTests: XCTestCase {
    /// Runs `body` with this process's stdout and stderr going to files; returns what each got.
    func captured(_ body: () async throws -> Int32) async throws -> (status: Int32, out: String, err: String) {
        let dir = try Hostile.scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        fflush(nil)
        let saved = (dup(1), dup(2))
        let files = (open(dir + "/out", O_WRONLY | O_CREAT | O_TRUNC, 0o600), open(dir + "/err", O_WRONLY | O_CREAT | O_TRUNC, 0o600))
        dup2(files.0, 1)
        dup2(files.1, 2)
        let status: Int32
        do {
            status = try await body()
        } catch {
            dup2(saved.0, 1); dup2(saved.1, 2)
            throw error
        }
        fflush(nil)
        dup2(saved.0, 1)
        dup2(saved.1, 2)
        for fd in [saved.0, saved.1, files.0, files.1] { close(fd) }
        return (status, try String(contentsOfFile: dir + "/out", encoding: .utf8), try String(contentsOfFile: dir + "/err", encoding: .utf8))
    }

    static let command = ["sh", "-c", "echo 42; echo warn >&2; exit 3"]

    /// `test "$(nxc exec db -- redis-cli get k)" = 42` in a driver script: the command's stdout
    /// reaches the script unchanged; the failure mark goes to stderr.
    func testOneNodeUnderTheDriverKeepsStdoutTheCommands() async throws {
        let r = try await captured { try await Operations.run(on: ["db"], driven: true) { _ in Self.command } }
        XCTAssertEqual(r.status, 3)
        XCTAssertEqual(r.out, "42\n")
        XCTAssertTrue(r.err.contains("warn\n"), r.err)
        XCTAssertTrue(r.err.contains(DriverMarks.failureMark + "db exit 3"), r.err)
    }

    func testOneNodeWithoutTheDriver() async throws {
        let r = try await captured { try await Operations.run(on: ["db"], driven: false) { _ in Self.command } }
        XCTAssertEqual(r.status, 3)
        XCTAssertEqual(r.out, "42\n")
        XCTAssertFalse(r.err.contains(DriverMarks.failureMark), r.err)
    }

    /// A role: every line says its node; the worst status wins; the driver's marks on stderr.
    func testSeveralNodesArePrefixed() async throws {
        let r = try await captured {
            try await Operations.run(on: ["client1", "client2"], driven: true) { node in
                ["sh", "-c", node == "client1" ? "echo one" : "echo two; exit 4"]
            }
        }
        XCTAssertEqual(r.status, 4)
        XCTAssertEqual(Set(r.out.split(separator: "\n")), ["client1: one", "client2: two"])
        XCTAssertEqual(r.err, DriverMarks.failureMark + "client2 exit 4\n")
    }
}
