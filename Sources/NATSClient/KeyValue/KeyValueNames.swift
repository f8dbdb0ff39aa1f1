/// What bucket names, keys and key patterns may contain (as nats.go and nats-py check them).
enum KeyValueNames {
    /// `[a-zA-Z0-9_-]+`: bucket names (and object store names) become stream names.
    static func isValidBucket(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.allSatisfy { isAlphanumeric($0) || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") }
    }

    /// `[-/_=.a-zA-Z0-9]+`, not starting or ending with `.`.
    static func isValidKey(_ key: String) -> Bool {
        guard let first = key.utf8.first, let last = key.utf8.last, first != dot, last != dot else { return false }
        return key.utf8.allSatisfy(isKeyByte) && !key.contains("..")
    }

    /// A key, or a pattern of tokens where `*` stands for one token and a last `>` for the rest.
    static func isValidPattern(_ pattern: String) -> Bool {
        if pattern == ">" { return true }
        let tokens = pattern.split(separator: ".", omittingEmptySubsequences: false)
        for (index, token) in tokens.enumerated() {
            if token == "*" { continue }
            if token == ">" { guard index == tokens.count - 1 else { return false }; continue }
            guard !token.isEmpty, token.utf8.allSatisfy(isKeyByte) else { return false }
        }
        return true
    }

    private static let dot = UInt8(ascii: ".")

    private static func isKeyByte(_ byte: UInt8) -> Bool {
        isAlphanumeric(byte) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "/") || byte == UInt8(ascii: "_")
            || byte == UInt8(ascii: "=") || byte == dot
    }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }
}
