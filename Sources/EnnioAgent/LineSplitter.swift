import Glibc

/// One line of an agent's input, as read.
public enum InputLine: Sendable, Hashable {
    /// A line, without its newline, as the bytes that arrived (not yet checked for anything).
    case line([UInt8])
    /// A line longer than the limit, skipped without being kept: how many bytes it had.
    case tooLong(byteCount: Int)
}

/// Cuts a stream of bytes into lines at `\n`, none longer than a limit: pure, no I/O.
///
/// Memory stays bounded by the limit: the bytes of a line that grows past it are dropped as
/// they arrive and only counted, and the line is reported as ``InputLine/tooLong(byteCount:)``
/// when its newline (or the end of the input) comes.
struct LineSplitter {
    let maximumLineLength: Int
    /// The line read so far, while it is within the limit.
    private var pending: [UInt8] = []
    /// The length of a line past the limit, while its bytes are being skipped.
    private var skipped: Int?

    init(maximumLineLength: Int) {
        precondition(maximumLineLength > 0, "lines need room for at least one byte")
        self.maximumLineLength = maximumLineLength
    }

    /// The bytes held for the line being read (never more than the limit).
    var heldByteCount: Int { pending.count }

    /// Takes the next bytes of the input; calls `emit` for each line they complete.
    mutating func append(_ bytes: UnsafeBufferPointer<UInt8>, emit: (InputLine) -> Void) {
        guard let base = bytes.baseAddress else { return }
        var start = 0
        while start < bytes.count {
            let found = memchr(base + start, Int32(UInt8(ascii: "\n")), bytes.count - start)
            let newline = found.map { UnsafeRawPointer($0) - UnsafeRawPointer(base) }
            let end = newline ?? bytes.count
            take(UnsafeBufferPointer(rebasing: bytes[start..<end]))
            guard let newline else { return }
            finishLine(emit: emit)
            start = newline + 1
        }
    }

    /// The input ended: a last line without a newline is emitted too.
    mutating func finish(emit: (InputLine) -> Void) {
        if !pending.isEmpty || skipped != nil { finishLine(emit: emit) }
    }

    private mutating func take(_ piece: UnsafeBufferPointer<UInt8>) {
        if let count = skipped {
            skipped = count + piece.count
        } else if pending.count + piece.count > maximumLineLength {
            skipped = pending.count + piece.count
            pending = []
        } else {
            pending.append(contentsOf: piece)
        }
    }

    private mutating func finishLine(emit: (InputLine) -> Void) {
        if let count = skipped {
            emit(.tooLong(byteCount: count))
        } else {
            emit(.line(pending))
        }
        pending.removeAll(keepingCapacity: pending.count <= 64 * 1024)
        skipped = nil
    }
}
