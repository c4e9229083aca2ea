import Foundation

/// A file operation of the build that failed, with the path and what nxc was doing (never a bare
/// Foundation error).
public struct BuildFileError: Error, CustomStringConvertible {
    public var doing: String
    public var path: String
    public var reason: String

    public init(_ doing: String, path: String, error: Error) {
        self.doing = doing
        self.path = path
        reason = Self.reason(error)
    }

    public var description: String { "error: \(doing): \(path): \(reason)" }

    /// The system's words for what went wrong (Foundation wraps errno in NSCocoaErrorDomain codes).
    static func reason(_ error: Error) -> String {
        let ns = error as NSError
        if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(underlying.code)))
        }
        if ns.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(ns.code))) }
        if ns.domain == NSCocoaErrorDomain {
            switch CocoaError.Code(rawValue: ns.code) {
            case .fileNoSuchFile, .fileReadNoSuchFile: return String(cString: strerror(ENOENT))
            case .fileWriteNoPermission, .fileReadNoPermission: return String(cString: strerror(EACCES))
            case .fileWriteOutOfSpace: return String(cString: strerror(ENOSPC))
            case .fileWriteVolumeReadOnly: return String(cString: strerror(EROFS))
            case .fileWriteFileExists: return String(cString: strerror(EEXIST))
            default: return "failed (Foundation error \(ns.code))"
            }
        }
        return "\(error)"
    }
}
