/// A composition that cannot be used, with where and what was expected.
public struct CompositionError: Error, Sendable, Hashable, CustomStringConvertible {
    public var location: SourceLocation?
    public var file: String
    public var key: String?
    public var message: String

    public init(file: String, location: SourceLocation? = nil, key: String? = nil, _ message: String) {
        self.file = file
        self.location = location
        self.key = key
        self.message = message
    }

    public var description: String {
        var s = location.map(\.description) ?? file
        s += ": error"
        if let key { s += ": \(key)" }
        return s + ": " + message
    }
}
