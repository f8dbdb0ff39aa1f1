import Foundation

/// The text of a `.creds` file as `nsc` and `nats` write it: two armoured blocks, the user's
/// JWT first and the user's NKEY seed second, each between lines of dashes
/// (`-----BEGIN NATS USER JWT-----` … `------END NATS USER JWT------`), with any commentary
/// around them. Nothing here ever quotes the seed.
struct CredentialsFile {
    let jwt: String
    let seed: String

    /// Reads and parses the file at `path`.
    /// - Throws: `.invalidCredentials` naming the path and what is missing.
    init(path: String) throws(NATSError) {
        let text = try Self.read(path, what: "credentials file")
        let blocks = Self.armouredBlocks(in: text)
        guard let jwt = blocks.first, jwt.hasPrefix("eyJ") else {
            throw NATSError(.invalidCredentials, "the credentials file \(path) holds no user JWT")
        }
        guard blocks.count >= 2, blocks[1].hasPrefix("S") else {
            throw NATSError(.invalidCredentials, "the credentials file \(path) holds no NKEY seed after its JWT")
        }
        self.jwt = jwt
        self.seed = blocks[1]
    }

    /// The seed in a seed file (`--nkey`): its first armoured block, else its first line that
    /// starts with `SU`, `SA` or `SO`.
    static func seed(inFile path: String) throws(NATSError) -> String {
        let text = try read(path, what: "NKEY seed file")
        if let block = armouredBlocks(in: text).first(where: { $0.hasPrefix("S") }) { return block }
        for line in text.split(whereSeparator: \.isNewline) {
            let trimmed = line.trimmingWhitespace()
            if ["SU", "SA", "SO"].contains(where: { trimmed.hasPrefix($0) }) { return String(trimmed) }
        }
        throw NATSError(.invalidCredentials, "the NKEY seed file \(path) holds no seed (a line starting with SU)")
    }

    /// The single-line contents of each block framed by two lines of at least three dashes.
    static func armouredBlocks(in text: String) -> [String] {
        let lines = text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).map { $0.trimmingWhitespace() }
        func isFrame(_ line: Substring) -> Bool {
            line.count >= 6 && line.hasPrefix("---") && line.hasSuffix("---")
        }
        func isToken(_ line: Substring) -> Bool {
            !line.isEmpty && line.unicodeScalars.allSatisfy { $0.properties.isAlphabetic || ("0"..."9").contains($0) || "-_.=".unicodeScalars.contains($0) }
        }
        var blocks: [String] = []
        var index = 0
        while index + 2 < lines.count {
            if isFrame(lines[index]), isToken(lines[index + 1]), isFrame(lines[index + 2]) {
                blocks.append(String(lines[index + 1]))
                index += 3
            } else {
                index += 1
            }
        }
        return blocks
    }

    private static func read(_ path: String, what: String) throws(NATSError) -> String {
        do {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            return String(decoding: data, as: UTF8.self)
        } catch {
            throw NATSError(.invalidCredentials, "cannot read the \(what) \(path): \((error as NSError).localizedDescription)")
        }
    }
}

/// Base64url without padding (RFC 4648 §5; Go's `RawURLEncoding`), as JWTs and NATS signatures
/// use it. (The object store's `Base64URL` pads.)
package enum RawBase64URL {
    package static func encode(_ bytes: some Sequence<UInt8>) -> String {
        var text = Data(bytes).base64EncodedString()
        text = text.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        while text.hasSuffix("=") { text.removeLast() }
        return text
    }

    package static func decode(_ text: some StringProtocol) -> [UInt8]? {
        var standard = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while standard.count % 4 != 0 { standard += "=" }
        return Data(base64Encoded: standard).map { Array($0) }
    }
}
