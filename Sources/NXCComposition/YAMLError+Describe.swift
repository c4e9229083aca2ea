import Yams

/// What Yams says of text it cannot read: where (when it knows) and what, for the file's error.
public func describeYAMLError(_ e: YamlError, file: String) -> (location: SourceLocation?, message: String) {
    switch e {
    case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _), .composer(_, let problem, let mark, _):
        return (SourceLocation(file: file, line: mark.line, column: mark.column), "invalid YAML: \(problem)")
    case .reader(let problem, _, _, _):
        return (nil, "invalid YAML: \(problem)")
    default:
        return (nil, "invalid YAML: \(e)")
    }
}
