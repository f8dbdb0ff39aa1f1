import NATSProtocol
import Testing

/// Reading the client's own outbound stream back into frames, for partial writes.
@Suite struct ClientFramesTests {
    static let stream = Array(
        ("CONNECT {\"verbose\":false}\r\n" + "PUB a 5\r\nhello\r\n" + "HPUB b r 12 14\r\nNATS/1.0\r\n\r\nhi\r\n"
            + "SUB c 1\r\n" + "PING\r\n" + "PUB d 6\r\nPING\r\n\r\n" + "UNSUB 1\r\n" + "PONG\r\n").utf8)

    @Test func walksEveryFrameWithItsKindAndEnd() {
        Self.stream.withUnsafeBytes { bytes in
            var kinds: [ClientFrames.Kind] = []
            var position = 0
            while let frame = ClientFrames.frame(at: position, in: bytes) {
                kinds.append(frame.kind)
                position = frame.end
            }
            #expect(position == bytes.count)
            #expect(kinds == [.connect, .publish, .publish, .subscribe, .ping, .publish, .unsubscribe, .pong])
        }
    }

    /// Any cut inside a frame is attributed to that frame; a payload that looks like a frame
    /// (`PING\r\n` inside a PUB) is not one.
    @Test func theFrameContainingEveryOffsetEndsWhereItsFrameDoes() {
        Self.stream.withUnsafeBytes { bytes in
            var ends: [Int] = []
            var position = 0
            while let frame = ClientFrames.frame(at: position, in: bytes) {
                ends.append(frame.end)
                position = frame.end
            }
            for offset in 0..<bytes.count {
                let expected = ends.first { $0 > offset }
                #expect(ClientFrames.endOfFrame(containing: offset, from: 0, in: bytes) == expected, "offset \(offset)")
            }
        }
    }

    @Test func anIncompleteFrameHasNoEnd() {
        let cut = Array("PUB a 5\r\nhel".utf8)
        cut.withUnsafeBytes { bytes in
            #expect(ClientFrames.frame(at: 0, in: bytes) == nil)
            #expect(ClientFrames.endOfFrame(containing: 3, from: 0, in: bytes) == nil)
        }
    }
}
