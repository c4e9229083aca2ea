import Foundation

/// Lines a test collects from progress callbacks that may run on several threads.
public final class Lines: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    public init() {}
    public func add(_ s: String) { lock.lock(); lines.append(s); lock.unlock() }
    public var all: [String] { lock.lock(); defer { lock.unlock() }; return lines }
}
