import Glibc

/// Why one HTTP GET failed: one line, the same text for the same cause, so
/// a retry loop can log each distinct reason once.
struct HTTPError: Error, CustomStringConvertible {
    let description: String
    /// Retrying cannot help (the body is larger than the agent accepts).
    var permanent = false
}

/// A minimal HTTP/1.0 client over sockets: one GET, `Connection: close`,
/// the body is what follows the headers until `Content-Length` bytes or the
/// end of the connection. Only status 200 is a success; redirects are not
/// followed and chunked answers are refused (an HTTP/1.0 request forbids
/// them). Every wait is bounded by a deadline.
enum HTTP {
    /// The largest body accepted (a deployment is a few KiB; the agent reads files with the same limit).
    static let maximumBody = Files.defaultLimit
    static let maximumHeaders = 64 << 10
    /// Seconds one connect may take, and one read or write may wait for the peer.
    static let connectTimeout = 10.0
    static let idleTimeout = 30.0

    /// GETs `url`; the body of a 200 answer. No wait ends after `deadline` (Clock.now() seconds).
    static func get(_ url: HTTPURL, deadline: Double) throws -> [UInt8] {
        let (fd, peer) = try connect(url, deadline: deadline)
        defer { close(fd) }
        var request = Array(("GET \(url.path) HTTP/1.0\r\nHost: \(url.hostHeader)\r\nUser-Agent: nxc-agent\r\n"
            + "Accept: */*\r\nConnection: close\r\n\r\n").utf8)
        try send(fd, &request, peer: peer, deadline: deadline)
        return try receive(fd, peer: peer, deadline: deadline)
    }

    /// A connected non-blocking socket to the first address of `url.host` that answers.
    private static func connect(_ url: HTTPURL, deadline: Double) throws -> (Int32, String) {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_NUMERICSERV
        var list: UnsafeMutablePointer<addrinfo>?
        let code = getaddrinfo(url.host, String(url.port), &hints, &list)
        guard code == 0, let first = list else {
            let message = code == EAI_SYSTEM ? errorString(errno) : String(cString: gai_strerror(code))
            throw HTTPError(description: "cannot resolve \(url.host): \(message)")
        }
        defer { freeaddrinfo(first) }
        var failure = HTTPError(description: "\(url.host) has no address")
        var current: UnsafeMutablePointer<addrinfo>? = first
        while let entry = current?.pointee {
            current = entry.ai_next
            let peer = numericAddress(entry.ai_addr, length: entry.ai_addrlen, port: url.port)
            let flags = Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue)
            let fd = socket(entry.ai_family, entry.ai_socktype | flags, entry.ai_protocol)
            guard fd >= 0 else {
                failure = HTTPError(description: "socket for \(peer): \(errorString(errno))")
                continue
            }
            var error: Int32 = 0
            if Glibc.connect(fd, entry.ai_addr, entry.ai_addrlen) != 0 {
                error = errno
                if error == EINPROGRESS || error == EINTR {
                    if wait(fd, events: POLLOUT, until: min(deadline, Clock.now() + connectTimeout)) {
                        var length = socklen_t(MemoryLayout<Int32>.size)
                        if getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0 { error = errno }
                    } else {
                        error = ETIMEDOUT
                    }
                }
            }
            if error == 0 { return (fd, peer) }
            close(fd)
            failure = HTTPError(description: "connect to \(peer): \(errorString(error))")
        }
        throw failure
    }

    private static func send(_ fd: Int32, _ bytes: inout [UInt8], peer: String, deadline: Double) throws {
        var sent = 0
        while sent < bytes.count {
            let count = bytes.withUnsafeBytes { raw in
                Glibc.send(fd, raw.baseAddress! + sent, raw.count - sent, Int32(MSG_NOSIGNAL))
            }
            if count > 0 {
                sent += count
            } else if count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
                guard wait(fd, events: POLLOUT, until: min(deadline, Clock.now() + idleTimeout)) else {
                    throw HTTPError(description: "sending the request to \(peer): timed out")
                }
            } else {
                throw HTTPError(description: "sending the request to \(peer): \(errorString(count < 0 ? errno : EIO))")
            }
        }
    }

    private static func receive(_ fd: Int32, peer: String, deadline: Double) throws -> [UInt8] {
        var data: [UInt8] = []
        var bodyStart: Int?
        var contentLength: Int?
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            if let bodyStart, let contentLength, data.count - bodyStart >= contentLength { break }
            guard wait(fd, events: POLLIN, until: min(deadline, Clock.now() + idleTimeout)) else {
                let stage = bodyStart.map { "reading the body from \(peer) (\(data.count - $0) bytes so far)" }
                    ?? "waiting for the answer of \(peer)"
                throw HTTPError(description: "\(stage): timed out")
            }
            let count = buffer.withUnsafeMutableBytes { raw in recv(fd, raw.baseAddress!, raw.count, 0) }
            if count < 0 {
                if errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK { continue }
                throw HTTPError(description: "reading from \(peer): \(errorString(errno))")
            }
            if count == 0 { break }
            let searchFrom = max(0, data.count - 3)
            data.append(contentsOf: buffer[0..<count])
            if bodyStart == nil {
                if let end = find(headerEnd, in: data, from: searchFrom) {
                    bodyStart = end + headerEnd.count
                    contentLength = try checkHeaders(data[0..<end], peer: peer)
                } else if data.count > maximumHeaders {
                    throw HTTPError(description: "the answer of \(peer) has no end of headers within \(maximumHeaders) bytes")
                }
            }
            if let bodyStart, data.count - bodyStart > maximumBody {
                throw HTTPError(description: "the body from \(peer) is larger than \(maximumBody) bytes", permanent: true)
            }
        }
        guard let bodyStart else {
            throw HTTPError(description: data.isEmpty ? "\(peer) closed the connection without answering"
                : "the answer of \(peer) ends inside its headers")
        }
        let body = data[bodyStart...]
        guard let contentLength else { return Array(body) }
        guard body.count >= contentLength else {
            throw HTTPError(description: "\(peer) closed the connection after \(body.count) of \(contentLength) body bytes")
        }
        return Array(body.prefix(contentLength))
    }

    private static let headerEnd: [UInt8] = Array("\r\n\r\n".utf8)

    /// Checks the status line and headers; returns Content-Length if given.
    private static func checkHeaders(_ bytes: ArraySlice<UInt8>, peer: String) throws -> Int? {
        let text = String(decoding: bytes, as: UTF8.self)
        let lines = text.split(separator: "\r\n", omittingEmptySubsequences: false)
        let statusLine = printable(lines.first ?? "")
        let parts = statusLine.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), parts[1].utf8.count == 3, let status = Int(parts[1]) else {
            throw HTTPError(description: "\(peer) did not answer in HTTP: \"\(statusLine)\"")
        }
        guard status == 200 else {
            let reason = parts.count == 3 ? " " + parts[2] : ""
            throw HTTPError(description: "\(peer) answered HTTP status \(status)\(reason)")
        }
        var contentLength: Int?
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].lowercased().trimmed()
            let value = String(line[line.index(after: colon)...]).trimmed()
            switch name {
            case "content-length":
                guard !value.isEmpty, value.utf8.count <= 18,
                      value.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
                      let length = Int(value), contentLength == nil || contentLength == length else {
                    throw HTTPError(description: "\(peer) sent a bad Content-Length: \"\(printable(value))\"")
                }
                guard length <= maximumBody else {
                    throw HTTPError(description: "the body from \(peer) is \(length) bytes, more than the "
                        + "\(maximumBody) accepted", permanent: true)
                }
                contentLength = length
            case "transfer-encoding" where value.lowercased() != "identity":
                throw HTTPError(description: "\(peer) sent Transfer-Encoding \"\(printable(value))\" in answer "
                    + "to an HTTP/1.0 request; the agent reads plain bodies only")
            default:
                break
            }
        }
        return contentLength
    }

    /// At most 100 characters, control characters replaced, for messages.
    private static func printable<S: StringProtocol>(_ text: S) -> String {
        String(text.prefix(100).map { $0.isASCII && ($0.asciiValue! < 0x20 || $0.asciiValue! == 0x7f) ? "?" : $0 })
    }

    private static func find(_ needle: [UInt8], in data: [UInt8], from start: Int) -> Int? {
        guard data.count >= needle.count, start <= data.count - needle.count else { return nil }
        for index in start...(data.count - needle.count) where data[index] == needle[0] {
            if data[index..<(index + needle.count)].elementsEqual(needle) { return index }
        }
        return nil
    }

    /// Waits until `fd` is ready for `events`; false if `deadline` passed first.
    private static func wait(_ fd: Int32, events: Int32, until deadline: Double) -> Bool {
        while true {
            let remaining = deadline - Clock.now()
            guard remaining > 0 else { return false }
            var entry = pollfd(fd: fd, events: Int16(events), revents: 0)
            let result = poll(&entry, 1, Int32(min(remaining * 1000, 60_000).rounded(.up)))
            if result > 0 { return true }
            if result < 0 && errno != EINTR { return true }  // Let the next call report the error.
        }
    }

    /// "127.0.0.1:8000", "[fd00::1]:8000".
    private static func numericAddress(_ address: UnsafeMutablePointer<sockaddr>?, length: socklen_t,
                                       port: UInt16) -> String {
        var buffer = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        guard let address, getnameinfo(address, length, &buffer, socklen_t(buffer.count), nil, 0, NI_NUMERICHOST) == 0 else {
            return "?:\(port)"
        }
        let host = String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return (host.contains(":") ? "[\(host)]" : host) + ":\(port)"
    }
}
