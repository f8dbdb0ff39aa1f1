import NATSProtocol

/// A growable byte buffer with manual storage: appends are a bounds check and a copy.
/// Not thread-safe; it owns its memory (not copyable) and frees it when it goes away.
struct ByteBuffer: ~Copyable {
    private(set) var base: UnsafeMutableRawPointer
    private(set) var count = 0
    private(set) var capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
        base = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
    }

    deinit { base.deallocate() }

    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    /// Makes room for `extra` more bytes.
    @inline(__always)
    mutating func reserve(_ extra: Int) {
        if count + extra > capacity { grow(to: count + extra) }
    }

    private mutating func grow(to minimum: Int) {
        var newCapacity = Swift.max(capacity * 2, 4096)
        while newCapacity < minimum { newCapacity *= 2 }
        let newBase = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 16)
        newBase.copyMemory(from: base, byteCount: count)
        base.deallocate()
        base = newBase
        capacity = newCapacity
    }

    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        reserve(bytes.count)
        appendUnchecked(bytes)
    }

    @inline(__always)
    mutating func appendUnchecked(_ bytes: UnsafeRawBufferPointer) {
        if let source = bytes.baseAddress, bytes.count > 0 {
            (base + count).copyMemory(from: source, byteCount: bytes.count)
            count += bytes.count
        }
    }

    @inline(__always)
    mutating func appendUnchecked(byte: UInt8) {
        base.storeBytes(of: byte, toByteOffset: count, as: UInt8.self)
        count += 1
    }

    @inline(__always)
    mutating func appendUnchecked(literal: StaticString) {
        appendUnchecked(UnsafeRawBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount))
    }

    /// A non-negative decimal number (at most 20 digits).
    @inline(__always)
    mutating func appendUnchecked(decimal value: Int) {
        var digits = 1
        var rest = value / 10
        while rest > 0 {
            digits += 1
            rest /= 10
        }
        var remaining = value
        var index = count + digits - 1
        repeat {
            base.storeBytes(of: UInt8(truncatingIfNeeded: 0x30 + remaining % 10), toByteOffset: index, as: UInt8.self)
            remaining /= 10
            index -= 1
        } while remaining > 0
        count += digits
    }

    mutating func insertAtFront(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0, let source = bytes.baseAddress else { return }
        reserve(bytes.count)
        (base + bytes.count).copyMemory(from: base, byteCount: count)
        base.copyMemory(from: source, byteCount: bytes.count)
        count += bytes.count
    }

    mutating func removeAll() { count = 0 }

    /// Drops the first `length` bytes.
    mutating func removeFirst(_ length: Int) {
        let length = Swift.min(length, count)
        guard length > 0 else { return }
        base.copyMemory(from: base + length, byteCount: count - length)
        count -= length
    }

    /// Keeps only the whole frames (see ``ClientFrames``) of the kinds `keep` says, in order, and
    /// drops the rest, including an incomplete frame at the end. Returns how many of the frames
    /// kept are `PING`s.
    mutating func keepFrames(where keep: (ClientFrames.Kind) -> Bool) -> (kept: Int, pings: Int) {
        var read = 0
        var write = 0
        var kept = 0
        var pings = 0
        let all = UnsafeRawBufferPointer(start: base, count: count)
        while let frame = ClientFrames.frame(at: read, in: all) {
            if keep(frame.kind) {
                let length = frame.end - read
                if write != read { (base + write).copyMemory(from: base + read, byteCount: length) }
                write += length
                kept += 1
                if frame.kind == .ping { pings += 1 }
            }
            read = frame.end
        }
        count = write
        return (kept, pings)
    }

    /// Empties the buffer and gives back storage above `limit` bytes.
    mutating func removeAll(shrinkingTo limit: Int) {
        count = 0
        if capacity > limit {
            base.deallocate()
            capacity = limit
            base = UnsafeMutableRawPointer.allocate(byteCount: limit, alignment: 16)
        }
    }
}
