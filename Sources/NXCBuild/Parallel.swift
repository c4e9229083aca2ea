import Foundation

/// Runs blocking work (processes, SSH, sleeps) on dedicated threads, at most `limit` at once.
/// Swift's cooperative pool has one thread per core, so blocking calls in tasks would serialise.
public enum Parallel {
    public static func map<T: Sendable, R: Sendable>(_ items: [T], limit: Int,
                                                     _ body: @escaping @Sendable (T) -> R) async -> [R] {
        await withCheckedContinuation { (cont: CheckedContinuation<[R], Never>) in
            let results = ResultBox<R>(count: items.count)
            let gate = DispatchSemaphore(value: max(1, limit))
            let group = DispatchGroup()
            for (i, item) in items.enumerated() {
                group.enter()
                let t = Thread {
                    gate.wait()
                    results.set(i, body(item))
                    gate.signal()
                    group.leave()
                }
                t.stackSize = 1 << 20
                t.start()
            }
            group.notify(queue: .global()) { cont.resume(returning: results.values) }
        }
    }
}

final class ResultBox<R: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var slots: [R?]
    init(count: Int) { slots = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ v: R) { lock.lock(); slots[i] = v; lock.unlock() }
    var values: [R] { lock.lock(); defer { lock.unlock() }; return slots.compactMap { $0 } }
}
