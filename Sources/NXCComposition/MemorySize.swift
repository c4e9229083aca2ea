/// A memory size in MiB as compositions and flavours write it: `1024`, `512M`, `2G`. Nil for
/// anything else, and for a count of G whose MiB would overflow.
public func parseMemorySize(_ text: String) -> Int? {
    let t = text.uppercased()
    if let v = Int(t) { return v }
    if t.hasSuffix("M"), let v = Int(t.dropLast()) { return v }
    if t.hasSuffix("G"), let v = Int(t.dropLast()) {
        let (product, overflow) = v.multipliedReportingOverflow(by: 1024)
        return overflow ? nil : product
    }
    return nil
}
