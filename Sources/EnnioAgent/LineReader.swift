import Foundation
import Glibc
import Synchronization

/// Lines of text from standard input or a named pipe, as an `AsyncStream`, read on a thread of
/// their own so that no task blocks on I/O.
public enum LineReader {
    private static let dropped = Atomic<UInt64>(0)

    /// Lines dropped because the consumer fell 10,000 lines behind (each drop is also reported
    /// on standard error).
    public static var droppedLines: UInt64 { dropped.load(ordering: .relaxed) }

    /// Lines from standard input; the stream ends at end of input.
    public static func standardInput() -> AsyncStream<String> {
        stream { emit in
            while let line = Swift.readLine(strippingNewline: true) { emit(line) }
        }
    }

    /// Lines from the file or named pipe at `path`. A named pipe is opened again each time its
    /// writers go away, so any number of programs can write to it one after another; a regular
    /// file is read once.
    public static func file(at path: String) -> AsyncStream<String> {
        stream { emit in
            while true {
                guard let file = fopen(path, "r") else { return }
                var isPipe = false
                var info = stat()
                if fstat(fileno(file), &info) == 0 { isPipe = (info.st_mode & S_IFMT) == S_IFIFO }
                var line: UnsafeMutablePointer<CChar>?
                var capacity = 0
                while getline(&line, &capacity, file) > 0, let line {
                    var text = String(cString: line)
                    if text.hasSuffix("\n") { text.removeLast() }
                    emit(text)
                }
                free(line)
                fclose(file)
                if !isPipe { return }
            }
        }
    }

    private static func stream(_ produce: @escaping @Sendable (_ emit: (String) -> Void) -> Void) -> AsyncStream<String> {
        let (stream, continuation) = AsyncStream<String>.makeStream(bufferingPolicy: .bufferingOldest(10_000))
        let thread = Thread {
            produce { line in
                if case .dropped = continuation.yield(line) {
                    dropped.add(1, ordering: .relaxed)
                    FileHandle.standardError.write(Data("ennio: input line dropped: the agent is 10000 lines behind\n".utf8))
                }
            }
            continuation.finish()
        }
        thread.name = "ennio-line-reader"
        thread.start()
        return stream
    }
}
