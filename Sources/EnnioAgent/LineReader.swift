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

    /// Lines from the file or named pipe at `path`. A named pipe is opened again each time its
    /// writers go away, so any number of programs can write to it one after another; a regular
    /// file is read once.
    public static func file(at path: String, maximumLineLength: Int = defaultMaximumLineLength) -> InputLines {
        lines(maximumLineLength: maximumLineLength) { channel in
            while true {
                // Opening a pipe waits for a writer.
                let descriptor = open(path, O_RDONLY | O_CLOEXEC)
                guard descriptor >= 0 else {
                    FileHandle.standardError.write(Data("ennio: cannot open \(path): \(String(cString: strerror(errno)))\n".utf8))
                    return
                }
                var info = stat()
                let isPipe = fstat(descriptor, &info) == 0 && (info.st_mode & S_IFMT) == S_IFIFO
                let goOn = read(descriptor, maximumLineLength: maximumLineLength, into: channel)
                close(descriptor)
                if !isPipe || !goOn { return }
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
