/// "did you mean …?" for names a user typed: the closest known word by edit distance.
public enum Suggestion {
    /// The known word nearest to `word` (Levenshtein distance), when it is near enough to be a
    /// typo: at most 1 edit for words of up to 4 characters, else at most a third of the length.
    public static func nearest(_ word: String, among known: [String]) -> String? {
        let w = Array(word.lowercased().unicodeScalars)
        let limit = w.count <= 4 ? 1 : max(2, w.count / 3)
        var best: (word: String, distance: Int)?
        for k in known {
            let d = distance(w, Array(k.lowercased().unicodeScalars))
            if d <= limit, d < (best?.distance ?? Int.max) { best = (k, d) }
        }
        return best?.word
    }

    /// `" (did you mean 'packages'?)"`, or "" when nothing is near.
    public static func hint(_ word: String, among known: [String]) -> String {
        nearest(word, among: known).map { "; did you mean '\($0)'?" } ?? ""
    }

    static func distance(_ a: [Unicode.Scalar], _ b: [Unicode.Scalar]) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }
}
