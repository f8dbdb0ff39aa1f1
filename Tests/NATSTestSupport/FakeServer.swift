import EnnioSync
import Foundation
import Glibc

/// A hand-driven NATS "server" on a free loopback port, for what a real server never does:
/// it accepts one client, sends `info` as its `INFO`, answers the handshake's `PING`, then
/// sends whatever the test tells it to (`send`) and throws away what the client writes.
final class FakeServer: Sendable {
    let port: Int
    private let listener: Int32
    private let client = Locked<Int32?>(nil)
    private let accepted = ConditionLock()

    init(info: String) throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard listener >= 0 else { throw TestSupportError(description: "socket() failed: \(errnoText())") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let listening = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 && listen(listener, 4) == 0
            }
        }
        guard listening else { throw TestSupportError(description: "bind/listen failed: \(errnoText())") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        self.listener = listener
        port = Int(UInt16(bigEndian: address.sin_port))
        let thread = Thread { [self] in serve(info: info) }
        thread.start()
    }

    deinit {
        if let descriptor = client.withLock({ $0 }) { Glibc.close(descriptor) }
        Glibc.close(listener)
    }

    private func serve(info: String) {
        let descriptor = accept(listener, nil, nil)
        guard descriptor >= 0 else { return }
        write(descriptor, "INFO \(info)\r\n")
        // Read until the handshake's PING, answer it, then keep reading (and dropping).
        var seen: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        var answered = false
        while true {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count <= 0 { return }
            if answered { continue }
            seen += buffer[0..<count]
            if String(decoding: seen, as: UTF8.self).contains("PING\r\n") {
                answered = true
                write(descriptor, "PONG\r\n")
                accepted.withLock {
                    client.withLock { $0 = descriptor }
                    accepted.broadcast()
                }
            }
        }
    }

    /// Sends `text` to the client once its handshake is done.
    func send(_ text: String) {
        let descriptor = accepted.withLock { () -> Int32 in
            while client.withLock({ $0 }) == nil { accepted.wait() }
            return client.withLock { $0! }
        }
        write(descriptor, text)
    }

    private func write(_ descriptor: Int32, _ text: String) {
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let count = bytes.withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            if count <= 0 { return }
            offset += count
        }
    }
}
