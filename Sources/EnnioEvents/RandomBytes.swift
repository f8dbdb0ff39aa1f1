#if canImport(Glibc)
import EnnioSync
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// Random bytes from the operating system's generator, drawn 256 at a time.
///
/// `SystemRandomNumberGenerator` makes a system call for every 64-bit value; an event id needs
/// two. `getentropy` hands out up to 256 bytes per call (the same kernel source): one call per
/// sixteen ids.
enum RandomBytes {
    private static let refillSize = 256

    private struct Pool: ~Copyable {
        let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: RandomBytes.refillSize, alignment: 8)
        var used = RandomBytes.refillSize

        deinit { bytes.deallocate() }
    }

    private static let pool = Locked(Pool())

    /// Sixteen random bytes, as two words.
    static func next128() -> (UInt64, UInt64) {
        pool.withLock { pool in
            if pool.used + 16 > refillSize {
                fill(pool.bytes)
                pool.used = 0
            }
            let high = pool.bytes.load(fromByteOffset: pool.used, as: UInt64.self)
            let low = pool.bytes.load(fromByteOffset: pool.used + 8, as: UInt64.self)
            pool.used += 16
            return (high, low)
        }
    }

    private static func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        if getentropy(buffer.baseAddress!, buffer.count) != 0 {
            // No system call for it (a kernel before 3.17): the standard library's generator.
            var generator = SystemRandomNumberGenerator()
            for offset in stride(from: 0, to: buffer.count, by: 8) {
                buffer.storeBytes(of: generator.next(), toByteOffset: offset, as: UInt64.self)
            }
        }
    }
}
