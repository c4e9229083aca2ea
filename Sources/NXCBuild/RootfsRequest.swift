import Foundation
import NXCComposition

/// What goes into a root filesystem.
public struct RootfsRequest: Sendable {
    public var distribution: Distribution
    public var mirror: String
    /// Packages of the flavour and the agent: the cached base layer.
    public var basePackages: [String]
    /// Packages of the composition: installed on top of the base.
    public var packages: [String]
    /// The flavour the image is for: its entry in the lock.
    public var flavour: String
    /// The composition's lock (nil: none yet; the build resolves against the mirror).
    public var lock: LockFile?
    /// Where the lock lives (for errors).
    public var lockPath: String
    public var mode: LockMode
    /// SOURCE_DATE_EPOCH of every step (from the lock).
    public var sourceDateEpoch: Int64

    public init(distribution: Distribution, mirror: String, basePackages: [String], packages: [String],
                flavour: String = "", lock: LockFile? = nil, lockPath: String = "composition.lock",
                mode: LockMode = .follow, sourceDateEpoch: Int64 = 1_700_000_000) {
        self.distribution = distribution
        self.mirror = mirror
        self.basePackages = basePackages.sorted()
        self.packages = packages.sorted()
        self.flavour = flavour
        self.lock = lock
        self.lockPath = lockPath
        self.mode = mode
        self.sourceDateEpoch = sourceDateEpoch
    }
}

/// How a build treats the composition's lock.
public enum LockMode: Sendable {
    /// Install the locked versions; packages the lock does not have yet (a new flavour, a package
    /// added to the composition) are resolved against the mirror and added.
    case follow
    /// Install exactly the lock's packages for this flavour, nothing else (`--frozen`, `nxc verify`).
    case frozen
    /// Ignore the lock and resolve against the mirror's current versions (`nxc lock --update`).
    case update
}
