import Foundation
import NXCDeployment

/// Serves one deployment document over plain HTTP to the nodes that cannot get it on their kernel
/// command line, and records which nodes fetched it.
///
/// The document is only at `/<token>/deployment.json` (`?node=NAME` says who asks), where the token
/// is 256 random bits drawn for this server, i.e. for one `nxc start`: someone on the network who
/// does not read a node's kernel command line cannot fetch it. Anything else gets 404, is logged and
/// is not counted as a fetch. Each connection has its own thread (at most `maximumConnections` at
/// once; more get 503 at once) and one deadline for the whole request, reading and writing, so a
/// client that trickles bytes only holds its own connection, and only until its deadline.
final class DeploymentServer: @unchecked Sendable {
    /// What it serves: the document, replaced (`replace`) when a spare changes it for the nodes still to boot.
    var document: Data {
        condition.lock()
        defer { condition.unlock() }
        return served
    }
    private var served: Data
    let port: Int
    /// 64 hex digits; in the document's path.
    let token: String
    let requestDeadline: Double
    let maximumConnections: Int
    /// The path the document is served at.
    var path: String { "/\(token)/deployment.json" }

    static let maximumRequest = 8192
    /// Refusals logged one by one; beyond, only counted (a scanner must not flood the terminal).
    static let loggedRefusals = 20

    private let fd: Int32
    private let expected: [UInt8]
    private let condition = NSCondition()
    private var fetched: Set<String> = []
    private var refused = 0
    private var active: Set<Int32> = []
    private var stopped = false
    private var accepting = false
    private var started = false
    private let log: @Sendable (String) -> Void
    /// What a path answers: bytes, or a file streamed from disk.
    enum Route: Sendable {
        case data(Data, type: String)
        case file(String, type: String)
        static func text(_ s: String) -> Route { .data(Data(s.utf8), type: "text/plain") }
    }
    /// Paths served to anyone besides the document (pxe: boot scripts, boot documents, kernel, initrd);
    /// `setRoute` changes one while serving (a machine installed on its disk boots from it next).
    private var routes: [String: Route]
    /// `reportPath?node=NAME&event=EVENT`: what nodes say of themselves (pxe --install: `installed`,
    /// `failed-STEP`), with when it was said; both words must be plain names.
    private let reportPath: [UInt8]?
    private var reported: [String: (event: String, at: Date)] = [:]
    /// Paths no route names: answered by this, if it knows them (pxe: `nic/<busid>`).
    private let resolver: (@Sendable (String) -> Route?)?
    /// Bytes of answers sent to each peer address (the request's whole answer, head included).
    private var sentBytes: [String: Int] = [:]

    /// `token`: drawn here unless given (pxe draws it first: the boot scripts it serves hold the URL).
    init(listen address: String, port wanted: Int?, document: Data, routes: [String: Route] = [:], token given: String? = nil,
         reportPath: String? = nil, resolver: (@Sendable (String) -> Route?)? = nil, requestDeadline: Double = 10, maximumConnections: Int = 64, log: @escaping @Sendable (String) -> Void) throws {
        self.served = document
        self.routes = routes
        self.reportPath = reportPath.map { Array($0.utf8) }
        self.resolver = resolver
        self.log = log
        self.requestDeadline = requestDeadline
        self.maximumConnections = maximumConnections
        token = given ?? Self.randomToken()
        expected = Array("/\(token)/deployment.json".utf8)
        let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard s >= 0 else { throw DeployError.systemCall("socket", errno: errno, context: "HTTP server") }
        var one: Int32 = 1
        setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        guard inet_pton(AF_INET, address, &addr.sin_addr) == 1 else {
            close(s)
            throw DeployError.badOption("--http-listen", problem: "'\(address)' is not an IPv4 address of this machine")
        }
        addr.sin_port = in_port_t(UInt16(wanted ?? 0).bigEndian)
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard rc == 0, listen(s, 128) == 0 else {
            let e = errno
            close(s)
            throw DeployError.systemCall("listen on \(address):\(wanted ?? 0)", errno: e, context: "HTTP server (give --http-listen ADDRESS)")
        }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(s, $0, &len) } }
        fd = s
        port = Int(UInt16(bigEndian: addr.sin_port))
    }

    deinit { stop() }

    /// 256 bits from the system's generator (getrandom), as hex.
    static func randomToken() -> String {
        var g = SystemRandomNumberGenerator()
        return (0..<4).map { _ in String(format: "%016llx", g.next() as UInt64) }.joined()
    }

    /// Equal bytes, in a time that depends on the lengths only: the token is not guessed byte by byte.
    static func constantTimeEqual(_ a: some Collection<UInt8>, _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var diff: UInt8 = 0
        for (x, y) in zip(a, b) { diff |= x ^ y }
        return diff == 0
    }

    func start() {
        condition.lock()
        guard !stopped, !started else { condition.unlock(); return }
        started = true
        accepting = true
        condition.unlock()
        let t = Thread { [self] in serve() }
        t.start()
    }

    /// Serves `document` from now on (the nodes that fetched the old one keep it; `nxc-agent update` follows).
    func replace(document: Data) {
        condition.lock()
        served = document
        condition.unlock()
    }

    /// Serves `route` at `path` from now on (nil: 404).
    func setRoute(_ path: String, _ route: Route?) {
        condition.lock()
        routes[path] = route
        condition.unlock()
    }

    /// The last event each node reported, and when.
    var reports: [String: (event: String, at: Date)] {
        condition.lock()
        defer { condition.unlock() }
        return reported
    }

    var fetchedNodes: Set<String> {
        condition.lock()
        defer { condition.unlock() }
        return fetched
    }

    /// Requests refused so far (wrong or missing token, bad requests, over the connection limit).
    var refusedCount: Int {
        condition.lock()
        defer { condition.unlock() }
        return refused
    }

    /// Stops accepting, cuts the connections still open and waits (at most 2 s) until every thread is done.
    func stop() {
        condition.lock()
        let was = stopped
        stopped = true
        for c in active { shutdown(c, Int32(SHUT_RDWR)) }
        let limit = Date().addingTimeInterval(2)
        while accepting || !active.isEmpty {
            if !condition.wait(until: limit) { break }
        }
        let neverStarted = !started
        condition.unlock()
        // The accept loop closes the socket when it ends; one that never started leaves it to us.
        if !was && neverStarted { close(fd) }
    }

    private var isStopped: Bool {
        condition.lock()
        defer { condition.unlock() }
        return stopped
    }

    private func serve() {
        defer {
            close(fd)
            condition.lock()
            accepting = false
            condition.broadcast()
            condition.unlock()
        }
        while !isStopped {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&pfd, 1, 200) > 0, !isStopped else { continue }
            var peer = sockaddr_in()
            var len = socklen_t(MemoryLayout<sockaddr_in>.size)
            let c = withUnsafeMutablePointer(to: &peer) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { accept(fd, $0, &len) }
            }
            if c < 0 { continue }
            _ = fcntl(c, F_SETFD, FD_CLOEXEC)
            _ = fcntl(c, F_SETFL, fcntl(c, F_GETFL) | O_NONBLOCK)
            let from = Self.describe(peer)
            condition.lock()
            let full = active.count >= maximumConnections
            if !full { active.insert(c) }
            condition.unlock()
            if full {
                // Answered at once, never waited on: a full server must not be stalled by its overflow.
                _ = Self.sendNow(c, Self.response(status: "503 Service Unavailable", body: Data("busy, retry\n".utf8)))
                close(c)
                refuse("\(from): over \(maximumConnections) connections at once (503)")
                continue
            }
            let t = Thread { [self] in
                handle(c, peer: from)
                condition.lock()
                active.remove(c)
                close(c)
                condition.broadcast()
                condition.unlock()
            }
            t.start()
        }
    }

    private func refuse(_ what: String) {
        condition.lock()
        refused += 1
        let n = refused
        let quiet = stopped
        condition.unlock()
        // Connections that stop() cut are not news.
        if quiet { return }
        if n <= Self.loggedRefusals {
            log("HTTP: refused \(what)")
        } else if n == Self.loggedRefusals + 1 {
            log("HTTP: more refusals; no longer logged one by one")
        }
    }

    /// What to answer to the request `head` (its bytes up to the blank line); the node that fetched, if any.
    func answer(_ head: [UInt8]) -> (status: String, body: Route, node: String?, refusal: String?) {
        let line = head.prefix { $0 != 13 && $0 != 10 }
        let parts = line.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        guard parts.count == 3, parts[2].starts(with: Array("HTTP/1.".utf8)) else {
            return ("400 Bad Request", .text("bad request\n"), nil, "a malformed request (400)")
        }
        guard parts[0].elementsEqual(Array("GET".utf8)) else {
            return ("405 Method Not Allowed", .text("GET only\n"), nil, "a request that is not GET (405)")
        }
        let target = parts[1]
        let q = target.firstIndex(of: UInt8(ascii: "?"))
        let path = target[..<(q ?? target.endIndex)]
        let query = q.map { Self.query(target[target.index(after: $0)...]) } ?? [:]
        condition.lock()
        let route = routes[String(decoding: path, as: UTF8.self)]
        condition.unlock()
        if let route = route ?? resolver?(String(decoding: path, as: UTF8.self)) {
            return ("200 OK", route, nil, nil)
        }
        if let reportPath, Self.constantTimeEqual(path, reportPath) {
            guard let node = query["node"], let event = query["event"] else {
                return ("400 Bad Request", .text("node= and event= (plain names)\n"), nil, "a report without a node or an event (400)")
            }
            condition.lock()
            reported[node] = (event, Date())
            condition.unlock()
            log("HTTP: \(node) reports: \(event)")
            return ("200 OK", .text("ok\n"), nil, nil)
        }
        guard Self.constantTimeEqual(path, expected) else {
            return ("404 Not Found", .text("not found\n"), nil, "a request for another path than the deployment's (404)")
        }
        return ("200 OK", .data(document, type: "application/json"), query["node"] ?? "?", nil)
    }

    /// The `key=value` pairs of a query whose value is a plausible host name or event (letters,
    /// digits, '-', '.', at most 64): only those go into the log and the records.
    static func query(_ text: some Collection<UInt8>) -> [String: String] {
        var out: [String: String] = [:]
        for kv in text.split(separator: UInt8(ascii: "&")) {
            guard let eq = kv.firstIndex(of: UInt8(ascii: "=")) else { continue }
            let value = kv[kv.index(after: eq)...]
            guard !value.isEmpty, value.count <= 64, value.allSatisfy({ b in
                (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || b == 0x2d || b == 0x2e
            }) else { continue }
            out[String(decoding: kv[..<eq], as: UTF8.self)] = String(decoding: value, as: UTF8.self)
        }
        return out
    }

    private func handle(_ c: Int32, peer: String) {
        let deadline = Self.now() + requestDeadline
        var request = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 2048)
        var complete = false
        while !complete && request.count < Self.maximumRequest {
            guard Self.waitFor(c, events: POLLIN, until: deadline) else { break }
            let n = buf.withUnsafeMutableBytes { recv(c, $0.baseAddress, $0.count, 0) }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) { continue }
            if n <= 0 { break }
            request += buf[0..<n]
            complete = Self.headEnd(request) != nil
        }
        guard complete, let end = Self.headEnd(request) else {
            let why = Self.now() >= deadline ? "no complete request within \(Int(requestDeadline)) s"
                : request.count >= Self.maximumRequest ? "a request over \(Self.maximumRequest) bytes" : "a request cut short"
            refuse("\(peer): \(why); closed")
            return
        }
        let (status, body, node, refusal) = answer(Array(request[..<end]))
        if let refusal { refuse("\(peer): \(refusal)") }
        let address = String(peer.prefix { $0 != ":" })
        var sent = 0
        defer {
            condition.lock()
            sentBytes[address, default: 0] += sent
            condition.unlock()
        }
        switch body {
        case .data(let data, let type):
            var out = Self.head(status: status, type: type, length: data.count)
            out.append(data)
            guard sendAll(out, to: c, peer: peer, deadline: deadline, sent: &sent) else { return }
        case .file(let path, let type):
            // A file is streamed: the deadline is for each chunk's progress, not the whole answer.
            guard let f = FileHandle(forReadingAtPath: path), let size = try? f.seekToEnd(), (try? f.seek(toOffset: 0)) != nil else {
                _ = sendAll(Self.response(status: "500 Internal Server Error", body: Data("cannot read it\n".utf8)), to: c, peer: peer,
                         deadline: deadline, sent: &sent)
                log("HTTP: cannot read \(path)")
                return
            }
            defer { try? f.close() }
            guard sendAll(Self.head(status: status, type: type, length: Int(size)), to: c, peer: peer, deadline: deadline, sent: &sent) else { return }
            var left = Int(size)
            while left > 0 {
                guard let chunk = try? f.read(upToCount: min(left, 1 << 20)), !chunk.isEmpty else { return }
                guard sendAll(chunk, to: c, peer: peer, deadline: Self.now() + requestDeadline * 3, sent: &sent) else { return }
                left -= chunk.count
            }
        }
        if let node {
            condition.lock()
            fetched.insert(node)
            condition.unlock()
            log("HTTP: \(node) fetched the deployment document (from \(peer))")
        }
    }

    static func response(status: String, body: Data) -> Data {
        var out = head(status: status, type: status.hasPrefix("200") ? "application/json" : "text/plain", length: body.count)
        out.append(body)
        return out
    }

    static func head(status: String, type: String, length: Int) -> Data {
        Data("HTTP/1.0 \(status)\r\nContent-Type: \(type)\r\nContent-Length: \(length)\r\nConnection: close\r\n\r\n".utf8)
    }

    /// Sends all of `out` before `deadline`; false (logged) if the peer did not take it or went away.
    private func sendAll(_ out: Data, to c: Int32, peer: String, deadline: Double, sent: inout Int) -> Bool {
        var off = 0
        while off < out.count {
            guard Self.waitFor(c, events: POLLOUT, until: deadline) else {
                refuse("\(peer): did not take the answer within \(Int(requestDeadline)) s; closed")
                return false
            }
            let n = out.withUnsafeBytes { Glibc.send(c, $0.baseAddress.map { $0 + off }, out.count - off, Int32(MSG_NOSIGNAL)) }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) { continue }
            if n <= 0 { return false }
            off += n
            sent += n
        }
        return true
    }

    /// Bytes sent so far to each peer address.
    var bytesSent: [String: Int] {
        condition.lock()
        defer { condition.unlock() }
        return sentBytes
    }

    /// Sends what the socket takes without waiting; the count sent.
    private static func sendNow(_ c: Int32, _ data: Data) -> Int {
        data.withUnsafeBytes { send(c, $0.baseAddress, data.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
    }

    /// Index of the blank line ending the head (CRLF CRLF, or LF LF from lax clients).
    static func headEnd(_ r: [UInt8]) -> Int? {
        guard r.count >= 2 else { return nil }
        for i in 1..<r.count where r[i] == 10 {
            if r[i - 1] == 10 { return i - 1 }
            if i >= 3, r[i - 1] == 13, r[i - 2] == 10, r[i - 3] == 13 { return i - 3 }
        }
        return nil
    }

    private static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

    private static func waitFor(_ c: Int32, events: Int32, until deadline: Double) -> Bool {
        while true {
            let left = deadline - now()
            guard left > 0 else { return false }
            var pfd = pollfd(fd: c, events: Int16(events), revents: 0)
            let r = poll(&pfd, 1, Int32(min(left, 60) * 1000) + 1)
            if r > 0 { return true }
            if r < 0 && errno != EINTR { return false }
        }
    }

    private static func describe(_ a: sockaddr_in) -> String {
        var addr = a.sin_addr
        var buf = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
        guard inet_ntop(AF_INET, &addr, &buf, socklen_t(buf.count)) != nil else { return "?" }
        return String(cString: buf) + ":\(UInt16(bigEndian: a.sin_port))"
    }
}
