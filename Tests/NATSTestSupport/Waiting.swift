import Foundation
import NATSClient
import Testing

struct TimedOut: Error, CustomStringConvertible {
    let what: String
    var description: String { "timed out waiting for \(what)" }
}

/// Runs `body`, failing with `TimedOut` after `limit`. The limit is only a safety net so that a
/// broken client fails the test instead of hanging it; no test relies on it for its result.
func within<T: Sendable>(
    _ limit: Duration = .seconds(20),
    _ what: String = "the operation",
    _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: limit)
            return nil
        }
        guard let first = try await group.next(), let value = first else {
            group.cancelAll()
            throw TimedOut(what: what)
        }
        group.cancelAll()
        return value
    }
}

extension NATSSubscription {
    /// The next `count` messages, waiting at most `limit` for all of them.
    func take(_ count: Int, within limit: Duration = .seconds(20)) async throws -> [NATSMessage] {
        let subscription = self
        return try await NATSTestSupport.within(limit, "\(count) messages on \(subject)") {
            var messages: [NATSMessage] = []
            var iterator = subscription.makeAsyncIterator()
            while messages.count < count, let message = await iterator.next() { messages.append(message) }
            return messages
        }
    }

    /// Every message already queued for this subscription, without waiting for more.
    func takeQueued() async -> [NATSMessage] {
        var messages: [NATSMessage] = []
        var iterator = makeAsyncIterator()
        for _ in 0..<pendingCount {
            if let message = await iterator.next() { messages.append(message) }
        }
        return messages
    }
}

extension NATSConnection {
    static func connect(to server: TestServer, configure: (inout NATSOptions) -> Void = { _ in }) async throws -> NATSConnection {
        var options = NATSOptions(servers: [server.url])
        configure(&options)
        return try await connect(options)
    }
}

/// An error struct with a typed code, as the client's errors are.
protocol CodedError: Error {
    associatedtype Code: Equatable & CustomStringConvertible
    var code: Code { get }
}

extension NATSError: CodedError {}
extension KeyValueError: CodedError {}

/// Asserts that `body` throws an `E` with `code`; returns the error thrown, if any.
@discardableResult
func expectError<E: CodedError, T>(
    _ type: E.Type,
    _ code: E.Code,
    sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () async throws -> T
) async -> E? {
    do {
        _ = try await body()
        Issue.record("expected \(E.self) \(code), but nothing was thrown", sourceLocation: sourceLocation)
        return nil
    } catch let error as E {
        #expect(error.code == code, "got \(error)", sourceLocation: sourceLocation)
        return error
    } catch {
        Issue.record("expected \(E.self) \(code), got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

/// Asserts that `body` throws a ``NATSError`` with `code`; returns the error thrown, if any.
@discardableResult
func expectNATSError<T>(
    _ code: NATSError.Code,
    sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () async throws -> T
) async -> NATSError? {
    await expectError(NATSError.self, code, sourceLocation: sourceLocation, body)
}

extension JetStream {
    /// Publishes once JetStream answers again — after a server restart, while the connection
    /// reconnects and the server recovers its streams — trying every 100 ms for at most `limit`.
    @discardableResult
    func publishWhenBack(_ payload: [UInt8], to subject: String, within limit: Duration = .seconds(30)) async throws -> PubAck {
        try await NATSTestSupport.within(limit, "JetStream to answer again") {
            while true {
                do {
                    return try await publish(payload, to: subject)
                } catch {
                    try await Task.sleep(for: .milliseconds(100))
                }
            }
        }
    }
}

/// A JetStream server with its own store, a connection to it and its JetStream API, for one test.
struct JetStreamSetup {
    let server: TestServer
    let directory: String
    let connection: NATSConnection
    let js: JetStream

    /// The server starts on a thread of its own: its start waits, and the cooperative pool is
    /// for the tests running alongside.
    static func start(configure: (inout NATSOptions) -> Void = { _ in }) async throws -> JetStreamSetup {
        let (server, directory) = try await onThread { try jetStreamServer() }
        let connection = try await NATSConnection.connect(to: server, configure: configure)
        return JetStreamSetup(server: server, directory: directory, connection: connection, js: JetStream(connection: connection))
    }

    /// Closes the connection, stops the server (on a thread of its own) and removes the store.
    func finish() async {
        await connection.close()
        await stopOffThePool(server)
        try? FileManager.default.removeItem(atPath: directory)
    }
}

/// The next `count` elements of `iterator` (fewer if it ends), waiting at most `limit` for all
/// of them; `iterator` moves past them.
func take<Iterator: AsyncIteratorProtocol & Sendable>(
    _ count: Int,
    from iterator: inout Iterator,
    within limit: Duration = .seconds(30)
) async throws -> [Iterator.Element] where Iterator.Element: Sendable {
    let start = iterator
    let (elements, advanced) = try await within(limit, "\(count) elements") {
        var moving = start
        var elements: [Iterator.Element] = []
        while elements.count < count, let element = try await moving.next() { elements.append(element) }
        return (elements, moving)
    }
    iterator = advanced
    return elements
}

/// Stops servers on a thread of their own: a stop waits for the process to exit, and the
/// cooperative pool is for the tests running alongside.
func stopOffThePool(_ servers: TestServer...) async {
    _ = try? await onThread { for server in servers { server.stop() } }
}

/// Reads `iterator` until its sequence ends or throws (within `within`'s limit), for tests that
/// expect a sequence to end with an error: `await #expect { try await readToTheEnd(iterator) }
/// throws: { … }`.
func readToTheEnd<Iterator: AsyncIteratorProtocol & Sendable>(_ iterator: Iterator) async throws {
    try await within(.seconds(20), "the error") {
        var iterator = iterator
        while try await iterator.next() != nil {}
    }
}
