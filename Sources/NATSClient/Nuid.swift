/// Random identifiers for inbox subjects: 22 characters of `[0-9A-Za-z]`, about 131 bits.
enum Nuid {
    private static let alphabet = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".utf8)

    static func next() -> String {
        var generator = SystemRandomNumberGenerator()
        var bytes: [UInt8] = []
        bytes.reserveCapacity(22)
        for _ in 0..<22 {
            bytes.append(alphabet[Int(generator.next(upperBound: UInt(alphabet.count)))])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
