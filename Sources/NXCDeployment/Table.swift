import Foundation

/// Plain-text tables with aligned columns.
public enum Table {
    public static func render(_ rows: [[String]]) -> [String] {
        let cols = rows.map(\.count).max() ?? 0
        let widths = (0..<cols).map { c in rows.map { c < $0.count ? $0[c].count : 0 }.max() ?? 0 }
        return rows.map { r in
            r.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }
                .joined(separator: "  ").trimmingCharacters(in: .whitespaces)
        }
    }
}
