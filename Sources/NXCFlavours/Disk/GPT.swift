import Foundation

/// A GUID partition table written into a disk image file (UEFI 2.x, 512-byte sectors): the
/// protective MBR, the primary header and entries at the front, their backup at the end. Written
/// by nxc itself (no sfdisk, no device): every GUID is given, so the same layout gives the same
/// bytes.
public struct GPT: Sendable, Equatable {
    public static let sectorSize = 512
    /// 128 entries of 128 bytes: 32 sectors after the header.
    static let entryCount = 128
    static let entrySize = 128
    static let entrySectors = entryCount * entrySize / sectorSize

    public struct Partition: Sendable, Equatable {
        public var name: String
        public var type: GUID
        public var guid: GUID
        /// First and last sector (inclusive).
        public var first: UInt64
        public var last: UInt64
        public var attributes: UInt64 = 0

        public init(name: String, type: GUID, guid: GUID, first: UInt64, last: UInt64, attributes: UInt64 = 0) {
            self.name = name
            self.type = type
            self.guid = guid
            self.first = first
            self.last = last
            self.attributes = attributes
        }

        public var offset: UInt64 { first * UInt64(GPT.sectorSize) }
        public var size: UInt64 { (last - first + 1) * UInt64(GPT.sectorSize) }
    }

    public var disk: GUID
    /// The disk's size in sectors.
    public var sectors: UInt64
    public var partitions: [Partition]

    public init(disk: GUID, sectors: UInt64, partitions: [Partition]) {
        self.disk = disk
        self.sectors = sectors
        self.partitions = partitions
    }

    /// Partition types.
    public static let biosBoot = GUID("21686148-6449-6E6F-744E-656564454649")!
    public static let efiSystem = GUID("C12A7328-F81F-11D2-BA4B-00A0C93EC93B")!
    /// The Discoverable Partitions Specification's root of x86-64 (systemd finds and grows it).
    public static let rootX86_64 = GUID("4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709")!

    public static var firstUsable: UInt64 { UInt64(2 + entrySectors) }
    public var lastUsable: UInt64 { sectors - 2 - UInt64(Self.entrySectors) }

    /// Problems with the layout (overlaps, partitions outside the usable sectors), empty when sound.
    public func problems() -> [String] {
        var out: [String] = []
        if partitions.count > Self.entryCount { out.append("\(partitions.count) partitions; a GPT holds \(Self.entryCount)") }
        if sectors < Self.firstUsable + UInt64(Self.entrySectors) + 2 { out.append("\(sectors) sectors is too small for a GPT") }
        for p in partitions {
            if p.first > p.last { out.append("\(p.name): ends (\(p.last)) before it starts (\(p.first))") }
            if p.first < Self.firstUsable || p.last > lastUsable {
                out.append("\(p.name): sectors \(p.first)-\(p.last) are outside \(Self.firstUsable)-\(lastUsable)")
            }
            if p.name.utf16.count > 36 { out.append("\(p.name): longer than 36 UTF-16 units") }
        }
        let sorted = partitions.sorted { $0.first < $1.first }
        for (a, b) in zip(sorted, sorted.dropFirst()) where b.first <= a.last { out.append("\(a.name) and \(b.name) overlap") }
        return out
    }

    /// The partition entries array (128 × 128 bytes).
    func entries() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Self.entryCount * Self.entrySize)
        for (i, p) in partitions.enumerated() {
            var e: [UInt8] = p.type.bytes + p.guid.bytes
            e += Self.le(p.first, 8) + Self.le(p.last, 8) + Self.le(p.attributes, 8)
            var name = p.name.utf16.prefix(36).flatMap { [UInt8($0 & 0xff), UInt8($0 >> 8)] }
            name += [UInt8](repeating: 0, count: 72 - name.count)
            e += name
            out.replaceSubrange(i * Self.entrySize..<(i + 1) * Self.entrySize, with: e)
        }
        return out
    }

    /// A header (92 bytes, padded to a sector) at `current`, its copy at `backup`, entries at `entriesAt`.
    func header(current: UInt64, backup: UInt64, entriesAt: UInt64, entriesCRC: UInt32) -> [UInt8] {
        var h: [UInt8] = Array("EFI PART".utf8) + [0, 0, 1, 0] + Self.le(92, 4) + Self.le(0, 4) + Self.le(0, 4)
        h += Self.le(current, 8) + Self.le(backup, 8) + Self.le(Self.firstUsable, 8) + Self.le(lastUsable, 8)
        h += disk.bytes + Self.le(entriesAt, 8) + Self.le(UInt64(Self.entryCount), 4) + Self.le(UInt64(Self.entrySize), 4)
        h += Self.le(UInt64(entriesCRC), 4)
        let crc = CRC32.checksum(h)
        h.replaceSubrange(16..<20, with: Self.le(UInt64(crc), 4))
        return h + [UInt8](repeating: 0, count: Self.sectorSize - h.count)
    }

    /// The protective MBR: one partition of type 0xEE over the disk; `bootCode` (at most 440 bytes,
    /// GRUB's boot.img) before it.
    func protectiveMBR(bootCode: [UInt8]) -> [UInt8] {
        var m = [UInt8](repeating: 0, count: Self.sectorSize)
        m.replaceSubrange(0..<min(440, bootCode.count), with: bootCode.prefix(440))
        let size = UInt64(min(sectors - 1, 0xFFFF_FFFF))
        let entry: [UInt8] = [0x00, 0x00, 0x02, 0x00, 0xEE, 0xFF, 0xFF, 0xFF] + Self.le(1, 4) + Self.le(size, 4)
        m.replaceSubrange(446..<462, with: entry)
        m[510] = 0x55
        m[511] = 0xAA
        return m
    }

    /// Writes the table into `fd` (a file of `sectors` × 512 bytes): MBR, primary header and
    /// entries, backup entries and header.
    public func write(to fd: Int32, bootCode: [UInt8] = []) throws {
        let bad = problems()
        guard bad.isEmpty else { throw GPTError.badLayout(bad) }
        let e = entries()
        let crc = CRC32.checksum(e)
        let backupEntries = sectors - 1 - UInt64(Self.entrySectors)
        let writes: [(UInt64, [UInt8])] = [
            (0, protectiveMBR(bootCode: bootCode)),
            (1, header(current: 1, backup: sectors - 1, entriesAt: 2, entriesCRC: crc)),
            (2, e),
            (backupEntries, e),
            (sectors - 1, header(current: sectors - 1, backup: 1, entriesAt: backupEntries, entriesCRC: crc)),
        ]
        for (lba, bytes) in writes {
            try Self.pwriteAll(fd, bytes, at: lba * UInt64(Self.sectorSize))
        }
    }

    static func pwriteAll(_ fd: Int32, _ bytes: [UInt8], at offset: UInt64) throws {
        var done = 0
        while done < bytes.count {
            let n = bytes[done...].withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(offset) + off_t(done)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw GPTError.write(offset: offset, errno: errno) }
            done += n
        }
    }

    static func le(_ v: UInt64, _ count: Int) -> [UInt8] { (0..<count).map { UInt8(truncatingIfNeeded: v >> (8 * UInt64($0))) } }
}

public enum GPTError: Error, CustomStringConvertible {
    case badLayout([String])
    case write(offset: UInt64, errno: Int32)

    public var description: String {
        switch self {
        case .badLayout(let p): return "partition table: " + p.joined(separator: "; ")
        case .write(let o, let e): return "partition table: write at byte \(o): \(String(cString: strerror(e)))"
        }
    }
}

/// A GUID as the GPT stores it: the first three fields little-endian, the rest as written.
public struct GUID: Sendable, Equatable, CustomStringConvertible {
    public var bytes: [UInt8]

    /// From its text form (8-4-4-4-12 hex digits; case ignored).
    public init?(_ text: String) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 5, zip(parts.map(\.count), [8, 4, 4, 4, 12]).allSatisfy({ $0 == $1 }),
              let b = Self.hexBytes(parts.joined()) else { return nil }
        self.init(raw: b)
    }

    /// From 16 bytes in text order (big-endian fields).
    public init(raw b: [UInt8]) {
        precondition(b.count == 16)
        bytes = [b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6]] + Array(b[8..<16])
    }

    /// A version-4-shaped GUID from the first 16 bytes of a digest (derived, not random).
    public static func derived(from digest: [UInt8]) -> GUID {
        var b = Array(digest.prefix(16))
        b[6] = (b[6] & 0x0f) | 0x40
        b[8] = (b[8] & 0x3f) | 0x80
        return GUID(raw: b)
    }

    static func hexBytes(_ hex: String) -> [UInt8]? {
        let chars = Array(hex)
        guard chars.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        for i in stride(from: 0, to: chars.count, by: 2) {
            guard let v = UInt8(String(chars[i...i + 1]), radix: 16) else { return nil }
            out.append(v)
        }
        return out
    }

    public var description: String {
        let b = bytes
        let raw = [b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6]] + Array(b[8..<16])
        let h = raw.map { String(format: "%02x", $0) }.joined()
        let c = Array(h)
        return [0..<8, 8..<12, 12..<16, 16..<20, 20..<32].map { String(c[$0]) }.joined(separator: "-")
    }
}

/// CRC-32 (IEEE 802.3, reflected, as the GPT and zlib use).
public enum CRC32 {
    static let table: [UInt32] = (0..<256).map { i -> UInt32 in
        var c = UInt32(i)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    public static func checksum(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes { c = table[Int((c ^ UInt32(b)) & 0xff)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }
}
