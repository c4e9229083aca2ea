import Foundation
import XCTest
@testable import NXCDeploy
@testable import NXCDeployment

/// The deployment server on 127.0.0.1: the token, the per-request deadline, concurrency.
final class DeploymentServerTests: XCTestCase {
    final class Log: @unchecked Sendable {
        private let lock = NSLock()
        private var lines: [String] = []
        func add(_ l: String) { lock.lock(); lines.append(l); lock.unlock() }
        var all: [String] { lock.lock(); defer { lock.unlock() }; return lines }
    }

    let document = Data(#"{"version":1,"nodes":{}}"#.utf8)

    func server(deadline: Double = 10, maximum: Int = 64, log: Log) throws -> DeploymentServer {
        let s = try DeploymentServer(listen: "127.0.0.1", port: nil, document: document, requestDeadline: deadline,
                                     maximumConnections: maximum, log: { log.add($0) })
        s.start()
        return s
    }

    /// A connected blocking socket to 127.0.0.1:port with 15 s receive and send timeouts.
    static func connectTo(_ port: Int) throws -> Int32 {
        let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr)
        var tv = timeval(tv_sec: 15, tv_usec: 0)
        setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard rc == 0 else { close(s); throw DeployError.systemCall("connect", errno: errno) }
        return s
    }

    static func sendAll(_ s: Int32, _ text: String) {
        let b = Array(text.utf8)
        _ = b.withUnsafeBytes { send(s, $0.baseAddress, b.count, Int32(MSG_NOSIGNAL)) }
    }

    /// Every byte until the peer closes (or 15 s pass).
    static func readAllBytes(_ s: Int32) -> [UInt8] {
        var out = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { recv(s, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            out += buf[0..<n]
        }
        return out
    }

    /// The same, as text.
    static func readAll(_ s: Int32) -> String { String(decoding: readAllBytes(s), as: UTF8.self) }

    static func get(_ port: Int, _ target: String) throws -> String {
        let s = try connectTo(port)
        defer { close(s) }
        sendAll(s, "GET \(target) HTTP/1.0\r\nHost: x\r\n\r\n")
        return readAll(s)
    }

    func testTokenIsRandom256Bits() throws {
        let log = Log()
        let a = try server(log: log), b = try server(log: log)
        defer { a.stop(); b.stop() }
        XCTAssertEqual(a.token.count, 64)
        XCTAssertTrue(a.token.allSatisfy { $0.isHexDigit })
        XCTAssertNotEqual(a.token, b.token)
        XCTAssertEqual(a.path, "/\(a.token)/deployment.json")
    }

    func testOnlyTheTokenPathServesTheDocument() throws {
        let log = Log()
        let s = try server(log: log)
        defer { s.stop() }
        var wrong = s.token
        wrong.removeLast()
        wrong += s.token.hasSuffix("0") ? "1" : "0"
        for target in ["/deployment.json?node=n1", "/deployment.json", "/", "/\(wrong)/deployment.json?node=n1",
                       "/\(s.token)/deployment.json/../x", "/\(s.token)", "/\(s.token)/deployment.jso", "//\(s.token)/deployment.json"] {
            let answer = try Self.get(s.port, target)
            XCTAssertTrue(answer.hasPrefix("HTTP/1.0 404"), "\(target): \(answer)")
            XCTAssertFalse(answer.contains("nodes"), "\(target) leaked the document")
        }
        XCTAssertEqual(s.fetchedNodes, [], "a refused request is not a fetch")
        XCTAssertEqual(s.refusedCount, 8)
        XCTAssertTrue(log.all.contains { $0.contains("refused") && $0.contains("404") }, "\(log.all)")
        XCTAssertFalse(log.all.contains { $0.contains(s.token) }, "the token is never logged")

        let ok = try Self.get(s.port, s.path + "?node=compute1")
        XCTAssertTrue(ok.hasPrefix("HTTP/1.0 200"), ok)
        XCTAssertTrue(ok.hasSuffix("\r\n\r\n" + String(decoding: document, as: UTF8.self)), ok)
        XCTAssertEqual(s.fetchedNodes, ["compute1"])
        // A name that is not a host name is not recorded as given (the log must stay one clean line).
        _ = try Self.get(s.port, s.path + "?node=a%0Ab")
        XCTAssertEqual(s.fetchedNodes, ["compute1", "?"])
    }

    /// pxe's routes: fixed paths answer anyone (a file streamed whole, larger than one chunk), any
    /// other path is still refused, and the bytes sent are counted per peer address.
    func testRoutesServeFilesAndCountBytesPerPeer() throws {
        let log = Log()
        let file = NSTemporaryDirectory() + "nxc-route-\(UUID().uuidString.prefix(8))"
        var g = SystemRandomNumberGenerator()
        let bytes = Data((0..<(3 << 20) + 17).map { _ in UInt8.random(in: 0...255, using: &g) })
        try bytes.write(to: URL(fileURLWithPath: file))
        defer { try? FileManager.default.removeItem(atPath: file) }
        let s = try DeploymentServer(listen: "127.0.0.1", port: nil, document: document,
                                     routes: ["/initrd": .file(file, type: "application/octet-stream"), "/boot.ipxe": .text("#!ipxe\n")],
                                     token: String(repeating: "ab", count: 32), log: { log.add($0) })
        s.start()
        defer { s.stop() }
        XCTAssertEqual(s.path, "/" + String(repeating: "ab", count: 32) + "/deployment.json", "the token given is the one used")
        let c = try Self.connectTo(s.port)
        Self.sendAll(c, "GET /initrd HTTP/1.0\r\n\r\n")
        let out = Self.readAllBytes(c)
        close(c)
        let head = "HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: \(bytes.count)\r\nConnection: close\r\n\r\n"
        XCTAssertEqual(out.count, head.utf8.count + bytes.count)
        XCTAssertEqual(Data(out.prefix(head.utf8.count)), Data(head.utf8))
        XCTAssertEqual(Data(out.dropFirst(head.utf8.count)), bytes, "the file, byte for byte")
        let script = try Self.get(s.port, "/boot.ipxe")
        XCTAssertTrue(script.hasPrefix("HTTP/1.0 200") && script.hasSuffix("\r\n\r\n#!ipxe\n"), script)
        XCTAssertTrue(try Self.get(s.port, "/initrd/../kernel").hasPrefix("HTTP/1.0 404"))
        XCTAssertTrue(try Self.get(s.port, "/kernel").hasPrefix("HTTP/1.0 404"))
        // Each connection adds its bytes when it ends.
        let deadline = Date().addingTimeInterval(5)
        while (s.bytesSent["127.0.0.1"] ?? 0) < out.count + script.utf8.count && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        XCTAssertGreaterThanOrEqual(s.bytesSent["127.0.0.1"] ?? 0, out.count + script.utf8.count)
        XCTAssertEqual(s.fetchedNodes, [], "a route is not a fetch of the document")
    }

    /// pxe --install: a node's report is recorded (plain names only), and a route changed while serving
    /// answers the new way (a machine installed on its disk is told to boot from it; 404 for pixiecore).
    func testReportsAndRoutesChangedWhileServing() throws {
        let log = Log()
        let token = String(repeating: "cd", count: 32)
        let s = try DeploymentServer(listen: "127.0.0.1", port: nil, document: document, routes: ["/nodes/a.ipxe": .text("boot me\n"),
                                     "/v1/boot/a": .text("{}")], token: token, reportPath: "/\(token)/install/report", log: { log.add($0) })
        s.start()
        defer { s.stop() }
        XCTAssertTrue(try Self.get(s.port, "/nodes/a.ipxe").hasSuffix("boot me\n"))
        XCTAssertTrue(try Self.get(s.port, "/\(token)/install/report?node=store&event=installed").hasPrefix("HTTP/1.0 200"))
        XCTAssertEqual(s.reports["store"]?.event, "installed")
        XCTAssertLessThan(abs(s.reports["store"]?.at.timeIntervalSinceNow ?? 99), 5)
        XCTAssertTrue(try Self.get(s.port, "/\(token)/install/report?node=x%0Aevil&event=installed").hasPrefix("HTTP/1.0 400"))
        XCTAssertTrue(try Self.get(s.port, "/\(token)/install/report?node=store").hasPrefix("HTTP/1.0 400"))
        XCTAssertTrue(try Self.get(s.port, "/install/report?node=m&event=installed").hasPrefix("HTTP/1.0 404"), "only under the token")
        XCTAssertEqual(Set(s.reports.keys), ["store"])
        s.setRoute("/nodes/a.ipxe", .text("sanboot\n"))
        s.setRoute("/v1/boot/a", nil)
        XCTAssertTrue(try Self.get(s.port, "/nodes/a.ipxe").hasSuffix("sanboot\n"))
        XCTAssertTrue(try Self.get(s.port, "/v1/boot/a").hasPrefix("HTTP/1.0 404"))
        XCTAssertEqual(s.fetchedNodes, [], "a report is not a fetch of the document")
    }

    func testOtherMethodsAndGarbageAreRefused() throws {
        let log = Log()
        let s = try server(log: log)
        defer { s.stop() }
        let post = try Self.connectTo(s.port)
        Self.sendAll(post, "POST \(s.path) HTTP/1.0\r\n\r\n")
        XCTAssertTrue(Self.readAll(post).hasPrefix("HTTP/1.0 405"))
        close(post)
        let junk = try Self.connectTo(s.port)
        Self.sendAll(junk, "hello\r\n\r\n")
        XCTAssertTrue(Self.readAll(junk).hasPrefix("HTTP/1.0 400"))
        close(junk)
        XCTAssertEqual(s.fetchedNodes, [])
    }

    /// A client that sends one byte a second holds its own connection only: another client's fetch
    /// is answered at once, and the slow one is closed at the whole-request deadline.
    func testSlowClientStallsNobodyAndIsCutAtTheDeadline() throws {
        let log = Log()
        let s = try server(deadline: 3, log: log)
        defer { s.stop() }
        let slow = try Self.connectTo(s.port)
        let request = Array("GET \(s.path)?node=slow HTTP/1.0\r\nHost: x\r\n\r\n".utf8)
        let trickled = DispatchSemaphore(value: 0)
        let trickle = Thread {
            defer { trickled.signal() }
            for b in request {
                var one = b
                if send(slow, &one, 1, Int32(MSG_NOSIGNAL)) <= 0 { return }
                Thread.sleep(forTimeInterval: 1)
            }
        }
        trickle.start()
        // The descriptor is closed only once the trickle has stopped writing to it (the server's close
        // makes its next sends fail), so its number cannot be reused under it.
        defer {
            _ = trickled.wait(timeout: .now() + 10)
            close(slow)
        }
        Thread.sleep(forTimeInterval: 0.3)

        let t0 = Date()
        let answer = try Self.get(s.port, s.path + "?node=fast")
        let took = Date().timeIntervalSince(t0)
        XCTAssertTrue(answer.hasPrefix("HTTP/1.0 200"), answer)
        XCTAssertLessThan(took, 1.5, "a trickling client delayed another client's fetch by \(took) s")

        let t1 = Date()
        let cut = Self.readAll(slow)
        let held = Date().timeIntervalSince(t0) + 0.3
        XCTAssertEqual(cut, "", "the slow client gets nothing")
        XCTAssertLessThan(held, 5, "the slow client was held \(held) s, past the 3 s deadline")
        XCTAssertLessThan(Date().timeIntervalSince(t1), 5)
        XCTAssertEqual(s.fetchedNodes, ["fast"])
        XCTAssertTrue(log.all.contains { $0.contains("no complete request within 3 s") }, "\(log.all)")
    }

    func testConnectionsOverTheLimitGet503AtOnce() throws {
        let log = Log()
        let s = try server(maximum: 2, log: log)
        let idle = try (0..<2).map { _ in try Self.connectTo(s.port) }
        Thread.sleep(forTimeInterval: 0.3)
        let t0 = Date()
        let answer = try Self.get(s.port, s.path)
        XCTAssertTrue(answer.hasPrefix("HTTP/1.0 503"), answer)
        XCTAssertLessThan(Date().timeIntervalSince(t0), 1.5)
        // stop() cuts the idle connections and returns promptly.
        let t1 = Date()
        s.stop()
        XCTAssertLessThan(Date().timeIntervalSince(t1), 2.5)
        for c in idle {
            XCTAssertEqual(Self.readAll(c), "")
            close(c)
        }
        XCTAssertThrowsError(try Self.get(s.port, s.path), "nothing listens after stop()")
    }

    func testConstantTimeEqual() {
        XCTAssertTrue(DeploymentServer.constantTimeEqual(Array("abc".utf8), Array("abc".utf8)))
        XCTAssertFalse(DeploymentServer.constantTimeEqual(Array("abd".utf8), Array("abc".utf8)))
        XCTAssertFalse(DeploymentServer.constantTimeEqual(Array("ab".utf8), Array("abc".utf8)))
    }
}

/// What g5k-ramdisk puts on a node's kernel command line when the document comes over HTTP.
final class KexecHTTPParamsTests: XCTestCase {
    func testTheDocumentsSHA256GoesBesideTheNetwork() {
        let node = Deployment.Node(role: "server", address: "10.0.0.5",
                                   interfaces: [.init(mac: "aa:bb:cc:dd:ee:ff", addresses: ["10.0.0.5/24"],
                                                      routes: [.init(to: "default", via: "10.0.0.1")])])
        let sha = String(repeating: "ab", count: 32)
        XCTAssertEqual(KexecStart.httpParams(node, sha: sha),
                       "nxc.if=aa:bb:cc:dd:ee:ff,10.0.0.5/24 nxc.route=default,10.0.0.1 nxc.deployment_sha256=\(sha)")
        XCTAssertEqual(KexecStart.httpParams(nil, sha: sha), "nxc.deployment_sha256=\(sha)")
    }
}
