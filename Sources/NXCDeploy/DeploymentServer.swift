import Foundation

/// Serves one deployment document over plain HTTP to the nodes that cannot get it on their
/// kernel command line, and records which nodes fetched it (`GET /deployment.json?node=NAME`).
final class DeploymentServer: @unchecked Sendable {
    let document: Data
    let fd: Int32
    let port: Int
    private let lock = NSLock()
    private var fetched: Set<String> = []
    private var stopped = false
    private var thread: Thread?
    private let log: @Sendable (String) -> Void

    init(listen address: String, port wanted: Int?, document: Data, log: @escaping @Sendable (String) -> Void) throws {
        self.document = document
        self.log = log
        let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard s >= 0 else { throw DeployError.invalid("HTTP server: socket: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        guard inet_pton(AF_INET, address, &addr.sin_addr) == 1 else {
            close(s)
            throw DeployError.invalid("HTTP server: '\(address)' is not an IPv4 address of this machine")
        }
        addr.sin_port = in_port_t(UInt16(wanted ?? 0).bigEndian)
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard rc == 0, listen(s, 64) == 0 else {
            let why = String(cString: strerror(errno))
            close(s)
            throw DeployError.invalid("HTTP server: cannot listen on \(address):\(wanted ?? 0): \(why) (use --http-listen ADDRESS)")
        }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(s, $0, &len) } }
        fd = s
        port = Int(UInt16(bigEndian: addr.sin_port))
    }

    deinit { stop() }

    func start() {
        let t = Thread { [self] in serve() }
        thread = t
        t.start()
    }

    var fetchedNodes: Set<String> {
        lock.lock()
        defer { lock.unlock() }
        return fetched
    }

    func stop() {
        lock.lock()
        let was = stopped
        stopped = true
        lock.unlock()
        if !was { close(fd) }
    }

    private var isStopped: Bool {
        lock.lock()
        defer { lock.unlock() }
        return stopped
    }

    private func serve() {
        while !isStopped {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&pfd, 1, 200) > 0, !isStopped else { continue }
            let c = accept(fd, nil, nil)
            if c < 0 { continue }
            handle(c)
            close(c)
        }
    }

    private func handle(_ c: Int32) {
        var tv = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var request = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 4096)
        while request.count < 65536 {
            let n = read(c, &buf, buf.count)
            if n <= 0 { break }
            request += buf[0..<n]
            if request.count >= 4, request.suffix(4).elementsEqual([13, 10, 13, 10]) { break }
        }
        let line = String(decoding: request.prefix { $0 != 13 && $0 != 10 }, as: UTF8.self)
        let parts = line.split(separator: " ")
        var status = "404 Not Found"
        var body = Data("not found\n".utf8)
        if parts.count >= 2, parts[0] == "GET" {
            let target = parts[1]
            let path = target.split(separator: "?", maxSplits: 1).first.map(String.init) ?? ""
            if path == "/deployment.json" {
                status = "200 OK"
                body = document
                var node = "?"
                if let q = target.split(separator: "?", maxSplits: 1).dropFirst().first {
                    for kv in q.split(separator: "&") where kv.hasPrefix("node=") { node = String(kv.dropFirst(5)) }
                }
                lock.lock()
                fetched.insert(node)
                lock.unlock()
                log("HTTP: \(node) fetched the deployment document")
            }
        }
        let head = "HTTP/1.0 \(status)\r\nContent-Type: application/json\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n"
        var out = Data(head.utf8)
        out.append(body)
        out.withUnsafeBytes { raw in
            var off = 0
            while off < raw.count {
                let n = write(c, raw.baseAddress! + off, raw.count - off)
                if n <= 0 { break }
                off += n
            }
        }
    }
}
