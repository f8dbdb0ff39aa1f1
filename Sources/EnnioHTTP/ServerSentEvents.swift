/// The `text/event-stream` format (HTML Living Standard, "Server-sent events").
///
/// A message is a block of `field: value` lines ended by a blank line: `id:` sets the
/// client's last event id (sent back as `Last-Event-ID` when it reconnects), `event:` names
/// the type, every line of the data gets a `data:` line of its own. Lines starting with `:`
/// are comments (used as keep-alives).
public enum ServerSentEvents {
    /// The response headers of an event stream.
    public static let headers: HTTPHeaders = [
        "Content-Type": "text/event-stream; charset=utf-8",
        "Cache-Control": "no-store",
        "X-Accel-Buffering": "no",
    ]

    /// Appends one message to `buffer`. Line breaks and NULs cannot appear in `id` or `event`
    /// (they would end the field); any there are left out. `data` is split into lines at
    /// CRLF, CR or LF.
    public static func appendMessage(id: String?, event: String?, data: some Collection<UInt8>, to buffer: inout [UInt8]) {
        if let id {
            appendField("id", id.utf8.filter { $0 != 0x0A && $0 != 0x0D && $0 != 0 }, to: &buffer)
        }
        if let event {
            appendField("event", event.utf8.filter { $0 != 0x0A && $0 != 0x0D }, to: &buffer)
        }
        var line: [UInt8] = []
        var previous: UInt8 = 0
        for byte in data {
            if byte == 0x0A, previous == 0x0D {
                // The LF of a CRLF: the line already ended at the CR.
            } else if byte == 0x0A || byte == 0x0D {
                appendField("data", line, to: &buffer)
                line.removeAll(keepingCapacity: true)
            } else {
                line.append(byte)
            }
            previous = byte
        }
        appendField("data", line, to: &buffer)
        buffer.append(0x0A)
    }

    /// A comment line, which clients ignore: keeps an idle connection from looking dead.
    public static func comment(_ text: String) -> [UInt8] {
        Array((": " + text.filter { $0 != "\n" && $0 != "\r" } + "\n\n").utf8)
    }

    /// Tells the client how long to wait before reconnecting.
    public static func retry(milliseconds: Int) -> [UInt8] {
        Array("retry: \(milliseconds)\n\n".utf8)
    }

    private static func appendField(_ name: String, _ value: some Collection<UInt8>, to buffer: inout [UInt8]) {
        buffer.append(contentsOf: name.utf8)
        buffer.append(contentsOf: [UInt8(ascii: ":"), 0x20])
        buffer.append(contentsOf: value)
        buffer.append(0x0A)
    }
}
