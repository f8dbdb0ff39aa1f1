import Foundation
import Glibc

/// Lines of input from standard input, a file or a named pipe, read on a thread of their own so
/// that no task blocks on I/O.
///
/// Lines are bytes, cut at `\n`, at most `maximumLineLength` bytes each (1 MiB by default): a
/// longer line is skipped as it arrives, with memory bounded by the limit, and delivered as
/// ``InputLine/tooLong(byteCount:)`` so that it is counted. Nothing is decoded here: the agent
/// checks each line (UTF-8, JSON, the event) and rejects and counts what is wrong, never
/// replacing bytes. When the consumer falls behind the reader waits (see ``InputLines``).
public enum LineReader {
    /// The longest line accepted by default: 1 MiB.
    public static let defaultMaximumLineLength = 1 << 20

    /// Lines from standard input; the sequence ends at the end of input.
    public static func standardInput(maximumLineLength: Int = defaultMaximumLineLength) -> InputLines {
        lines(maximumLineLength: maximumLineLength) { channel in
            _ = read(STDIN_FILENO, maximumLineLength: maximumLineLength, into: channel)
        }
    }

    /// Lines from the file or named pipe at `path`. A regular file is read once. A named pipe is
    /// read for as long as the agent runs, from any number of programs writing to it one after
    /// another: each writer's last line ends when it closes the pipe, and the pipe is never
    /// without a reader in between, so a line written just as the previous writer leaves is not
    /// lost.
    public static func file(at path: String, maximumLineLength: Int = defaultMaximumLineLength) -> InputLines {
        lines(maximumLineLength: maximumLineLength) { channel in
            // Not waiting in open for a writer (a pipe has none yet): poll waits instead.
            let descriptor = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
            guard descriptor >= 0 else {
                report("cannot open \(path): \(String(cString: strerror(errno)))")
                return
            }
            var info = stat()
            if fstat(descriptor, &info) == 0, (info.st_mode & S_IFMT) == S_IFIFO {
                readPipe(at: path, descriptor, maximumLineLength: maximumLineLength, into: channel)
            } else {
                _ = read(descriptor, maximumLineLength: maximumLineLength, into: channel)
                close(descriptor)
            }
        }
    }

    private static func lines(maximumLineLength: Int, _ produce: @escaping @Sendable (InputLines.Channel) -> Void) -> InputLines {
        precondition(maximumLineLength > 0, "lines need room for at least one byte")
        let channel = InputLines.Channel()
        let thread = Thread {
            produce(channel)
            channel.finish()
        }
        thread.name = "ennio-line-reader"
        thread.start()
        return InputLines(channel: channel)
    }

    /// Reads the named pipe open (without blocking) as `first` until the consumer goes away.
    ///
    /// When every writer has closed it, the last line is complete; a new descriptor is opened
    /// before the old one is closed, because a pipe that is left without a reader discards what
    /// a writer put in it meanwhile. A descriptor opened while no writer is there waits in
    /// `poll` for the next one (Linux reports no hang-up for writers gone before it was opened).
    private static func readPipe(at path: String, _ first: Int32, maximumLineLength: Int, into channel: InputLines.Channel) {
        var descriptor = first
        defer { close(descriptor) }
        var splitter = LineSplitter(maximumLineLength: maximumLineLength)
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        var consumerGone = false
        while !consumerGone {
            var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            if poll(&entry, 1, -1) < 0 {
                if errno == EINTR { continue }
                report("cannot wait for \(path): \(String(cString: strerror(errno)))")
                return
            }
            let count = buffer.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
            if count > 0 {
                buffer.withUnsafeBufferPointer { bytes in
                    splitter.append(UnsafeBufferPointer(rebasing: bytes[..<count])) { line in
                        if !consumerGone, !channel.send(line) { consumerGone = true }
                    }
                }
                continue
            }
            if count < 0 {
                if errno == EAGAIN || errno == EINTR { continue }
                report("cannot read \(path): \(String(cString: strerror(errno)))")
                return
            }
            // Every writer is gone: their last line is complete. The next descriptor first.
            splitter.finish { line in
                if !consumerGone, !channel.send(line) { consumerGone = true }
            }
            let next = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
            guard next >= 0 else {
                report("cannot open \(path) again: \(String(cString: strerror(errno)))")
                return
            }
            close(descriptor)
            descriptor = next
        }
    }

    private static func report(_ problem: String) {
        FileHandle.standardError.write(Data("ennio: \(problem)\n".utf8))
    }

    /// Reads `descriptor` to its end, sending each line; `false` if the consumer went away.
    private static func read(_ descriptor: Int32, maximumLineLength: Int, into channel: InputLines.Channel) -> Bool {
        var splitter = LineSplitter(maximumLineLength: maximumLineLength)
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        var consumerGone = false
        while !consumerGone {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR { continue }
            if count <= 0 { break }
            buffer.withUnsafeBufferPointer { bytes in
                splitter.append(UnsafeBufferPointer(rebasing: bytes[..<count])) { line in
                    if !consumerGone, !channel.send(line) { consumerGone = true }
                }
            }
        }
        if !consumerGone {
            splitter.finish { line in
                if !channel.send(line) { consumerGone = true }
            }
        }
        return !consumerGone
    }
}
