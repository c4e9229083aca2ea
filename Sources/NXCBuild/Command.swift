import Foundation

/// A failure to run a program, with its argv and what it printed.
public struct CommandError: Error, CustomStringConvertible, Sendable {
    public var argv: [String]
    public var status: Int32
    public var output: String
    public var timedOut: Bool = false

    public var description: String {
        let cmd = argv.prefix(3).joined(separator: " ") + (argv.count > 3 ? " …" : "")
        if timedOut { return "\(cmd) did not finish in time" }
        let tail = output.split(separator: "\n").suffix(15).joined(separator: "\n")
        return "\(cmd) failed with exit status \(status)" + (tail.isEmpty ? "" : ":\n\(tail)")
    }
}

/// Runs programs from an argv array (never through a shell), with an explicit environment and a timeout.
public enum Command {
    /// Resolves a program name on PATH.
    public static func which(_ name: String, path: String? = ProcessInfo.processInfo.environment["PATH"]) -> String? {
        if name.contains("/") { return FileManager.default.isExecutableFile(atPath: name) ? name : nil }
        for dir in (path ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin").split(separator: ":") {
            let p = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return nil
    }

    /// Runs `argv` to completion; output (stdout+stderr) is captured, and also appended to `log` if given.
    /// Throws `CommandError` on a non-zero exit or when `timeout` seconds pass (the process is killed).
    @discardableResult
    public static func run(_ argv: [String], environment: [String: String]? = nil, directory: String? = nil,
                           log: String? = nil, timeout: Double = 3600, input: Data? = nil) throws -> String {
        let (status, out) = try status(argv, environment: environment, directory: directory, log: log,
                                       timeout: timeout, input: input)
        if status != 0 { throw CommandError(argv: argv, status: status, output: out) }
        return out
    }

    /// Like `run`, but returns the exit status instead of throwing on failure.
    public static func status(_ argv: [String], environment: [String: String]? = nil, directory: String? = nil,
                              log: String? = nil, timeout: Double = 3600, input: Data? = nil) throws -> (Int32, String) {
        guard let exe = which(argv[0], path: environment?["PATH"] ?? ProcessInfo.processInfo.environment["PATH"]) else {
            throw CommandError(argv: argv, status: 127, output: "\(argv[0]): command not found")
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = Array(argv.dropFirst())
        if let environment { p.environment = environment }
        if let directory { p.currentDirectoryURL = URL(fileURLWithPath: directory) }
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        let inPipe = Pipe()
        p.standardInput = input == nil ? FileHandle.nullDevice : inPipe
        let collector = OutputCollector(logPath: log)
        pipe.fileHandleForReading.readabilityHandler = { h in
            let d = h.availableData
            if d.isEmpty { h.readabilityHandler = nil } else { collector.append(d) }
        }
        try p.run()
        if let input {
            inPipe.fileHandleForWriting.write(input)
            try? inPipe.fileHandleForWriting.close()
        }
        let deadline = Date().addingTimeInterval(timeout)
        var timedOut = false
        while p.isRunning {
            if Date() > deadline {
                timedOut = true
                p.terminate()
                let grace = Date().addingTimeInterval(5)
                while p.isRunning && Date() < grace { usleep(50_000) }
                if p.isRunning { kill(p.processIdentifier, SIGKILL) }
                break
            }
            usleep(20_000)
        }
        p.waitUntilExit()
        pipe.fileHandleForReading.readabilityHandler = nil
        // A daemon forked by the child may hold the pipe open: drain what is there, never wait for EOF.
        drain(pipe.fileHandleForReading.fileDescriptor, into: collector)
        let out = collector.text
        if timedOut { throw CommandError(argv: argv, status: -1, output: out, timedOut: true) }
        return (p.terminationStatus, out)
    }
}

/// Reads what a pipe holds within a short grace period, without waiting for its writers to close it.
func drain(_ fd: Int32, into collector: OutputCollector) {
    var buf = [UInt8](repeating: 0, count: 65536)
    while true {
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&pfd, 1, 100) > 0 else { return }
        let n = read(fd, &buf, buf.count)
        if n <= 0 { return }
        collector.append(Data(buf[0..<n]))
    }
}

/// Collects a child's output from the pipe's handler thread.
final class OutputCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    private let log: FileHandle?

    init(logPath: String?) {
        if let logPath {
            FileManager.default.createFile(atPath: logPath, contents: nil)
            log = FileHandle(forWritingAtPath: logPath)
        } else {
            log = nil
        }
    }

    deinit { try? log?.close() }

    func append(_ d: Data) {
        guard !d.isEmpty else { return }
        lock.lock()
        data.append(d)
        log?.write(d)
        lock.unlock()
    }

    var text: String {
        lock.lock()
        defer { lock.unlock() }
        return String(decoding: data, as: UTF8.self)
    }
}
