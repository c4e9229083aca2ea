import Foundation
import XCTest
import NXCBuild
import NXCDeploy
import NXCDeployment
import NXCStore

/// nxc as the end-to-end tests run it: the binary under test (NXC_BIN), one project folder as
/// HOME (no user key: nxc makes one in .nxc/), and the store shared between tests.
struct NxcSession {
    let nxc: String
    let project: String
    /// Added to (or replacing) the inherited environment.
    var extra: [String: String] = [:]

    func environment(_ more: [String: String] = [:]) -> [String: String] {
        var e = ProcessInfo.processInfo.environment
        e["NXC_STORE"] = Store.defaultRoot()
        e["HOME"] = project
        for (k, v) in extra { e[k] = v }
        for (k, v) in more { e[k] = v }
        return e
    }

    /// `nxc ARGS --project PROJECT`, output printed for the test log.
    @discardableResult
    func run(_ args: [String], timeout: Double = 900, env more: [String: String] = [:]) throws -> (status: Int32, output: String) {
        let r = try Command.status([nxc] + args + ["--project", project], environment: environment(more), timeout: timeout)
        print("$ nxc \(args.joined(separator: " ")) → \(r.0)\n\(r.1)")
        return (r.0, r.1)
    }

    /// `nxc exec --project PROJECT TARGET -- COMMAND`, output trimmed.
    func exec(_ target: String, _ command: [String]) throws -> (status: Int32, output: String) {
        let r = try Command.status([nxc, "exec", "--project", project, target, "--"] + command, environment: environment(), timeout: 120)
        print("$ nxc exec \(target) -- \(command.joined(separator: " ")) → \(r.0)\n\(r.1)")
        return (r.0, r.1.trimmingCharacters(in: .whitespacesAndNewlines))
    }
}

/// Every pane of a tmux session is a shell on its node (the pane's title): types
/// `echo pane-of-$(NAME_COMMAND)` into it and reads the screen back until the answer shows.
func assertPanesAreShells(session: String, nameCommand: String, timeout: Double,
                          file: StaticString = #filePath, line: UInt = #line) throws {
    let titles = try Command.run(["tmux", "list-panes", "-t", session, "-F", "#{pane_title}"], timeout: 10)
        .split(separator: "\n").map(String.init)
    XCTAssertFalse(titles.isEmpty, "no panes in \(session)", file: file, line: line)
    for (i, node) in titles.enumerated() {
        let target = "\(session):0.\(i)"
        var screen = ""
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            _ = try? Command.status(["tmux", "send-keys", "-t", target, "echo pane-of-$(\(nameCommand))", "Enter"], timeout: 10)
            Thread.sleep(forTimeInterval: 1.5)
            screen = (try? Command.run(["tmux", "capture-pane", "-p", "-t", target], timeout: 10)) ?? ""
            if screen.contains("\npane-of-\(node)") { break }
        }
        XCTAssertTrue(screen.contains("\npane-of-\(node)"), "pane \(i) (\(node)):\n\(screen)", file: file, line: line)
    }
}

/// A Docker engine for the tests that need one: docker.io and docker-compose installed if missing,
/// and a dockerd started when none answers. Returns the PID of the dockerd it started (the caller
/// stops it, by that PID), nil when one already answered.
func ensureDockerEngine(log: String) throws -> Int32? {
    if Command.which("dockerd") == nil || Command.which("docker-compose") == nil {
        var e = ProcessInfo.processInfo.environment
        e["DEBIAN_FRONTEND"] = "noninteractive"
        try Command.run(["apt-get", "install", "-y", "--no-install-recommends", "docker.io", "docker-compose"],
                        environment: e, timeout: 900)
    }
    if (try? Command.status(["docker", "info"], timeout: 20))?.0 == 0 { return nil }
    let pidfile = NSTemporaryDirectory() + "nxc-dockerd-\(getpid()).pid"
    try Command.run(["sh", "-c", #"dockerd >"$1" 2>&1 </dev/null & echo $! >"$2""#, "sh", log, pidfile], timeout: 30)
    guard let text = try? String(contentsOfFile: pidfile, encoding: .utf8), let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)) else {
        throw XCTSkip("could not start dockerd (no PID)")
    }
    try? FileManager.default.removeItem(atPath: pidfile)
    let deadline = Date().addingTimeInterval(60)
    while Date() < deadline {
        if (try? Command.status(["docker", "info"], timeout: 20))?.0 == 0 { return pid }
        guard Processes.isAlive(pid) else { break }
        Thread.sleep(forTimeInterval: 0.5)
    }
    Processes.stop(pid, grace: 20)
    let tail = (try? String(contentsOfFile: log, encoding: .utf8))?.split(separator: "\n").suffix(5).joined(separator: "\n") ?? ""
    XCTFail("dockerd did not answer within 60 s:\n\(tail)")
    throw XCTSkip("no Docker engine")
}

/// Every file of a build folder but manifest.json is in its manifest, as an artefact or as a file
/// the start method generated, with its size and SHA-256; `generated` names the latter.
func assertManifestListsEveryFile(_ dir: String, generated: Set<String>, file: StaticString = #filePath, line: UInt = #line) throws {
    let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/manifest.json"))) as? [String: Any],
                             file: file, line: line)
    func entries(_ key: String) -> [[String: Any]] { json[key] as? [[String: Any]] ?? [] }
    let listed = entries("artefacts") + entries("generated")
    let names = Set(listed.compactMap { $0["name"] as? String })
    let present = Set(try FileManager.default.contentsOfDirectory(atPath: dir)).subtracting(["manifest.json"])
    XCTAssertEqual(names, present, "manifest.json of \(dir)", file: file, line: line)
    XCTAssertTrue(generated.isSubset(of: Set(entries("generated").compactMap { $0["name"] as? String })),
                  "\(generated) among the generated files of \(dir)", file: file, line: line)
    for e in listed {
        guard let name = e["name"] as? String, let sum = e["sha256"] as? String else { XCTFail("entry \(e)", file: file, line: line); continue }
        if present.contains(name) { XCTAssertEqual(try sha256(file: dir + "/" + name), sum, name, file: file, line: line) }
    }
}

/// The compose project a docker deployment's state names (the docker method's own state).
func composeProjectName(_ state: RuntimeState) -> String? {
    struct ComposeProject: Decodable { var name: String }
    return state.own(ComposeProject.self)?.name
}
