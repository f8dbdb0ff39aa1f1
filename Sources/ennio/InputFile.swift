import Foundation
import Glibc

/// Reads a whole file, or standard input, on a thread of its own (the read may block for as long
/// as the writer takes), up to a limit.
enum InputFile {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// The bytes of the file at `path`, or of standard input when `path` is `nil`.
    /// - Throws: ``Failure`` when it cannot be read or holds more than `limit` bytes.
    static func read(_ path: String?, limit: Int) async throws -> [UInt8] {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<[UInt8], any Error>) in
            let thread = Thread {
                continuation.resume(with: Result { try readBlocking(path, limit: limit) })
            }
            thread.name = "ennio-input-file"
            thread.start()
        }
    }

    private static func readBlocking(_ path: String?, limit: Int) throws -> [UInt8] {
        let descriptor = path.map { open($0, O_RDONLY | O_CLOEXEC) } ?? STDIN_FILENO
        guard descriptor >= 0 else { throw Failure(description: "cannot open it: \(String(cString: strerror(errno)))") }
        defer { if path != nil { close(descriptor) } }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR { continue }
            guard count >= 0 else { throw Failure(description: "cannot read it: \(String(cString: strerror(errno)))") }
            if count == 0 { return bytes }
            guard bytes.count + count <= limit else { throw Failure(description: "it holds more than \(limit) bytes") }
            bytes.append(contentsOf: chunk[..<count])
        }
    }
}
