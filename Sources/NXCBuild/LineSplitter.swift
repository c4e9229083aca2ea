import Foundation

/// Splits a byte stream into lines.
public final class LineSplitter: @unchecked Sendable {
    private let lock = NSLock()
    private var pending = Data()
    private let line: (String) -> Void
    public init(_ line: @escaping (String) -> Void) { self.line = line }

    public func feed(_ d: Data) {
        lock.lock()
        defer { lock.unlock() }
        pending.append(d)
        while let nl = pending.firstIndex(of: 10) {
            line(String(decoding: pending[pending.startIndex..<nl], as: UTF8.self))
            pending.removeSubrange(pending.startIndex...nl)
        }
    }

    public func flush() {
        lock.lock()
        defer { lock.unlock() }
        if !pending.isEmpty { line(String(decoding: pending, as: UTF8.self)) }
        pending = Data()
    }
}
