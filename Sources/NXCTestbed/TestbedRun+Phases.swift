import Foundation

/// The phases a reserved host goes through, each tried again a bounded number of times with
/// backoff (`--retries`), and recorded for the report.
public enum TestbedPhase: String, Sendable, Codable, CaseIterable {
    case connect, facts, transfer, kexec, install, boot
}

/// Why a host failed, as a class a script can act on (the report's `errorClass`).
public enum TestbedErrorClass: String, Sendable, Codable {
    /// SSH could not reach it or log in.
    case unreachable
    /// It answered but refused the check (no root, a bundle folder that is not root's own).
    case refused
    /// Not an x86_64 host with kexec.
    case unsupported
    /// Its RAM cannot hold the unpacked system with a margin.
    case memory
    /// The bundle did not reach it intact.
    case transfer
    /// kexec.sh failed on it.
    case kexec
    /// Its installer (pxe --install) said a step failed, or did not report in time.
    case install
    /// It did not come back as its node in time.
    case boot
}

/// How often a phase is tried again, and how long to wait between tries: `base` seconds, doubled
/// each time, at most `cap`.
public struct RetryPolicy: Sendable, Equatable {
    public var retries: Int
    public var base: Double
    public var cap: Double

    public static let defaultRetries = 2
    public init(retries: Int = defaultRetries, base: Double = 2, cap: Double = 30) {
        self.retries = retries
        self.base = base
        self.cap = cap
    }

    /// The wait before try `attempt + 1` (attempts count from 1).
    public func delay(after attempt: Int) -> Double {
        min(cap, base * pow(2, Double(max(0, attempt - 1))))
    }
}

/// One phase of one host: when it started, how long it took, how many tries, and how it ended.
public struct PhaseRecord: Sendable, Codable, Equatable {
    public var phase: TestbedPhase
    public var started: Date
    public var seconds: Double
    public var attempts: Int
    public var ok: Bool
    public var error: String?

    public init(phase: TestbedPhase, started: Date, seconds: Double, attempts: Int, ok: Bool, error: String? = nil) {
        self.phase = phase
        self.started = started
        self.seconds = seconds
        self.attempts = attempts
        self.ok = ok
        self.error = error
    }
}

extension TestbedRun {
    /// What one try of a phase says.
    public enum Outcome: Sendable, Equatable {
        case ok
        /// Worth another try (a dropped connection, a short transfer).
        case retry(String, TestbedErrorClass)
        /// Another try would say the same (no kexec on the host, not enough RAM).
        case fail(String, TestbedErrorClass)
    }

    /// Runs `body` until it succeeds, fails for good, or has been tried `1 + policy.retries`
    /// times, waiting `policy.delay` between tries; records the phase. On failure the run's
    /// error, class and state say so. Returns whether the phase succeeded.
    @discardableResult
    public mutating func phase(_ phase: TestbedPhase, policy: RetryPolicy, progress: (String) -> Void = { _ in },
                               _ body: (inout TestbedRun, Int) -> Outcome) -> Bool {
        let started = Date()
        var attempt = 0
        while true {
            attempt += 1
            let outcome = body(&self, attempt)
            switch outcome {
            case .ok:
                phases.append(PhaseRecord(phase: phase, started: started, seconds: Date().timeIntervalSince(started),
                                          attempts: attempt, ok: true))
                return true
            case .retry(let why, _) where attempt <= policy.retries:
                let wait = policy.delay(after: attempt)
                progress(String(format: "%@: %@: %@; trying again in %.0f s (%d of %d)", entry.host.description, phase.rawValue, why,
                                wait, attempt + 1, policy.retries + 1))
                Thread.sleep(forTimeInterval: wait)
            case .retry(let why, let cls), .fail(let why, let cls):
                phases.append(PhaseRecord(phase: phase, started: started, seconds: Date().timeIntervalSince(started),
                                          attempts: attempt, ok: false, error: why))
                error = why
                errorClass = cls
                state = "failed"
                return false
            }
        }
    }

    /// The phase this host failed in, if it failed.
    public var failedPhase: TestbedPhase? { phases.last { !$0.ok }?.phase }
}
