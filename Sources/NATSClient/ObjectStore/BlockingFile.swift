import Dispatch
import EnnioSync
import Glibc

/// A file read or written in chunks on a serial dispatch queue of its own, so that blocking
/// reads and writes never hold a thread of Swift's cooperative pool.
final class BlockingFile: Sendable {
    let path: String
    private let descriptor: Locked<Int32?>
    private let queue: DispatchQueue

    private init(path: String, descriptor: Int32) {
        self.path = path
        self.descriptor = Locked(descriptor)
        self.queue = DispatchQueue(label: "ennio.object-store.file")
    }

    deinit {
        if let open = descriptor.withLock({ $0 }) { _ = Glibc.close(open) }
    }

    /// Opens `path` for reading.
    static func open(reading path: String) async throws -> BlockingFile {
        try await open(path, flags: O_RDONLY | O_CLOEXEC)
    }

    /// Creates (or truncates) `path` for writing, readable and writable by its owner.
    static func create(writing path: String) async throws -> BlockingFile {
        try await open(path, flags: O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC)
    }

    private static func open(_ path: String, flags: Int32) async throws -> BlockingFile {
        let queue = DispatchQueue(label: "ennio.object-store.open")
        let descriptor: Int32 = try await withCheckedThrowingContinuation { continuation in
            queue.async {
                let descriptor = Glibc.open(path, flags, 0o600)
                if descriptor < 0 {
                    continuation.resume(throwing: failure("cannot open", path))
                } else {
                    continuation.resume(returning: descriptor)
                }
            }
        }
        return BlockingFile(path: path, descriptor: descriptor)
    }

    /// Up to `count` bytes; fewer only at the end of the file, none after it.
    func read(upTo count: Int) async throws -> [UInt8] {
        try await run { descriptor, path in
            var bytes = [UInt8](repeating: 0, count: count)
            var filled = 0
            while filled < count {
                let result = bytes.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress! + filled, count - filled) }
                if result < 0, errno == EINTR { continue }
                guard result >= 0 else { throw Self.failure("cannot read", path) }
                if result == 0 { break }
                filled += result
            }
            bytes.removeLast(count - filled)
            return bytes
        }
    }

    /// Writes all of `bytes`.
    func write(_ bytes: [UInt8]) async throws {
        try await run { descriptor, path in
            var written = 0
            while written < bytes.count {
                let result = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress! + written, bytes.count - written) }
                if result < 0, errno == EINTR { continue }
                guard result > 0 else { throw Self.failure("cannot write", path) }
                written += result
            }
        }
    }

    /// Flushes what was written to the disk and closes the file.
    func close() async throws {
        try await run { descriptor, path in
            guard fsync(descriptor) == 0 || errno == EINVAL else { throw Self.failure("cannot flush", path) }
        }
        if let open = descriptor.withLock({ value -> Int32? in
            defer { value = nil }
            return value
        }) {
            _ = Glibc.close(open)
        }
    }

    private func run<Result: Sendable>(_ body: @escaping @Sendable (Int32, String) throws -> Result) async throws -> Result {
        guard let open = descriptor.withLock({ $0 }) else {
            throw ObjectStoreError(.fileError, "\(path.debugDescription) is already closed")
        }
        let path = self.path
        return try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(with: Swift.Result { try body(open, path) })
            }
        }
    }

    private static func failure(_ what: String, _ path: String) -> ObjectStoreError {
        ObjectStoreError(.fileError, "\(what) \(path.debugDescription): \(String(cString: strerror(errno)))")
    }
}
