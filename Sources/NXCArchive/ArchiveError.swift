/// A libarchive failure, with the archive path and libarchive's own message.
public struct ArchiveError: Error, CustomStringConvertible, Sendable {
    public var path: String
    public var operation: String
    public var message: String

    public var description: String { "\(path): \(operation): \(message)" }
}
