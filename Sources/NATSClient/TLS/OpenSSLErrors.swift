import COpenSSL

/// The calling thread's OpenSSL error queue, read into text for an error message.
enum OpenSSLErrors {
    /// The queued errors' reasons, oldest first ("certificate verify failed; …"), and empties
    /// the queue; `fallback` when nothing is queued.
    static func take(fallback: String = "no detail from OpenSSL") -> String {
        var reasons: [String] = []
        while true {
            let code = ERR_get_error()
            guard code != 0 else { break }
            if let reason = ERR_reason_error_string(code) {
                reasons.append(String(cString: reason))
            } else {
                var buffer = [CChar](repeating: 0, count: 256)
                ERR_error_string_n(code, &buffer, buffer.count)
                reasons.append(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
            }
        }
        return reasons.isEmpty ? fallback : reasons.joined(separator: "; ")
    }

    /// Empties the queue, before a call whose errors are to be read alone.
    static func discard() {
        ERR_clear_error()
    }
}
