import Glibc

/// `nxc-agent bundle DIR`: puts this node's own kexec bundle in DIR, so that `nxc start --reuse`
/// can kexec it into the same image again without pushing anything but the small kexec.sh:
/// `DIR/kernel` → the running kernel in /boot (flavours that keep it in the image), and
/// `DIR/initrd` copied out of memory: with `retain_initrd` on the command line the kernel keeps
/// the initrd it unpacked; boot_params give its physical address and size, and /proc/kcore (an
/// ELF core of the running system) maps physical RAM to file offsets. Files already in DIR are
/// left alone; nxc compares SHA-256 afterwards and pushes whatever differs.
struct BundleCommand {
    let root: SystemRoot
    let log: Logger

    /// boot_params (the x86 zero page): ramdisk_image and ramdisk_size in the setup header,
    /// their high 32 bits in ext_ramdisk_image and ext_ramdisk_size.
    static func initrdLocation(bootParams bytes: [UInt8]) -> (address: UInt64, size: UInt64)? {
        guard bytes.count >= 0x220 else { return nil }
        func u32(_ offset: Int) -> UInt64 {
            UInt64(bytes[offset]) | UInt64(bytes[offset + 1]) << 8 | UInt64(bytes[offset + 2]) << 16 | UInt64(bytes[offset + 3]) << 24
        }
        let address = u32(0x218) | u32(0x0c0) << 32
        let size = u32(0x21c) | u32(0x0c4) << 32
        guard address != 0, size != 0 else { return nil }
        return (address, size)
    }

    /// The offset in an ELF64 core file of `size` bytes at physical `address`, from the program
    /// headers (PT_LOAD with p_paddr set, as /proc/kcore gives for RAM).
    static func coreOffset(fd: Int32, address: UInt64, size: UInt64) throws -> Int64? {
        var header = [UInt8](repeating: 0, count: 64)
        guard pread(fd, &header, 64, 0) == 64, header[0] == 0x7f, header[1] == 0x45, header[2] == 0x4c, header[3] == 0x46,
              header[4] == 2, header[5] == 1 else { return nil }
        func u16(_ b: [UInt8], _ o: Int) -> UInt64 { UInt64(b[o]) | UInt64(b[o + 1]) << 8 }
        func u64(_ b: [UInt8], _ o: Int) -> UInt64 { (0..<8).reduce(UInt64(0)) { $0 | UInt64(b[o + $1]) << (8 * UInt64($1)) } }
        let phoff = u64(header, 0x20), phentsize = u16(header, 0x36), phnum = u16(header, 0x38)
        guard phentsize >= 56, phnum < 65536 else { return nil }
        var ph = [UInt8](repeating: 0, count: Int(phentsize))
        for i in 0..<phnum {
            guard pread(fd, &ph, Int(phentsize), off_t(phoff + i * phentsize)) == Int(phentsize) else { return nil }
            let type = u64(ph, 0) & 0xffff_ffff
            let offset = u64(ph, 8), paddr = u64(ph, 24), memsz = u64(ph, 40)
            guard type == 1, paddr != UInt64.max, memsz > 0 else { continue }
            if address >= paddr, address - paddr <= memsz, size <= memsz - (address - paddr) {
                return Int64(offset + (address - paddr))
            }
        }
        return nil
    }

    func run(_ arguments: [String]) -> Int32 {
        guard arguments.count == 1, let directory = arguments.first, directory.hasPrefix("/") else {
            log.error("usage: nxc-agent bundle /ABSOLUTE/DIR")
            return 64
        }
        do {
            try Files.makeDirectories(directory, mode: 0o700)
            try kernel(into: directory + "/kernel")
            try initrd(into: directory + "/initrd")
            return 0
        } catch {
            log.error("\(error)")
            return 1
        }
    }

    /// The running kernel, if the image keeps it: a symbolic link to it.
    private func kernel(into path: String) throws {
        if Files.exists(path) { return }
        var names = utsname()
        uname(&names)
        let release = withUnsafeBytes(of: &names.release) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
        let image = "/boot/vmlinuz-" + release
        guard Files.exists(root.path(image)) else {
            log.info("kernel: \(image) is not in this image")
            return
        }
        try Files.symlink(path, to: root.path(image))
        log.info("kernel: \(path) -> \(image)")
    }

    /// The initrd this kernel booted from, if it kept it (retain_initrd).
    private func initrd(into path: String) throws {
        if Files.exists(path) { return }
        let cmdline = String(decoding: (try? Files.readBytes(root.path("/proc/cmdline"), limit: 1 << 20)) ?? [], as: UTF8.self)
        guard BootContext.commandLineWords(cmdline).contains(where: { $0.key == "retain_initrd" }) else {
            log.info("initrd: not kept in memory (no retain_initrd on the kernel command line)")
            return
        }
        let paramsPath = root.path("/sys/kernel/boot_params/data")
        guard let location = BundleCommand.initrdLocation(bootParams: try Files.readBytes(paramsPath, limit: 1 << 16)) else {
            log.info("initrd: \(paramsPath) names none")
            return
        }
        let corePath = root.path("/proc/kcore")
        let core = open(corePath, O_RDONLY | O_CLOEXEC)
        guard core >= 0 else { throw AgentError.io(path: corePath, operation: "open", errno: errno) }
        defer { close(core) }
        guard let start = try BundleCommand.coreOffset(fd: core, address: location.address, size: location.size) else {
            log.info("initrd: physical range \(location.address)+\(location.size) is not in \(corePath)")
            return
        }
        let code = try Files.replace(path, mode: 0o600) { out, temporary in
            var buffer = [UInt8](repeating: 0, count: 1 << 20)
            var done: UInt64 = 0
            while done < location.size {
                let want = Int(min(UInt64(buffer.count), location.size - done))
                let got = pread(core, &buffer, want, off_t(start + Int64(done)))
                if got <= 0 { throw AgentError.io(path: corePath, operation: "read", errno: got < 0 ? errno : EIO) }
                var chunk = Array(buffer[0..<got])
                let failed = writeAll(out, &chunk)
                if failed != 0 { throw AgentError.io(path: temporary, operation: "write", errno: failed) }
                done += UInt64(got)
            }
        }
        guard code == 0 else { throw AgentError.io(path: path, operation: "rename onto", errno: code) }
        log.info("initrd: \(location.size) bytes copied from memory (retain_initrd) to \(path)")
    }
}
