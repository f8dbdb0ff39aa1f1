import Foundation

/// Certificates for TLS tests, made once per test process with the `openssl` command in a
/// temporary directory: a private CA, certificates it signs (a server valid for `localhost`,
/// `127.0.0.1` and `::1`; a server valid only for `wrong.example`; a client), and a server
/// certificate from another CA that nobody trusts. EC P-256 keys, valid for 30 days.
struct TestCertificates: Sendable {
    let directory: String

    var caFile: String { directory + "/ca.pem" }
    var serverCertificate: String { directory + "/server.pem" }
    var serverKey: String { directory + "/server.key" }
    /// Signed by the CA, for `wrong.example` only.
    var wrongNameCertificate: String { directory + "/wrong-name.pem" }
    var wrongNameKey: String { directory + "/wrong-name.key" }
    var clientCertificate: String { directory + "/client.pem" }
    var clientKey: String { directory + "/client.key" }
    /// Valid names, but signed by a CA the tests never trust.
    var untrustedCertificate: String { directory + "/untrusted.pem" }
    var untrustedKey: String { directory + "/untrusted.key" }

    /// The set for this process, made on first use.
    static func shared() throws -> TestCertificates {
        try made.get()
    }

    private static let made: Result<TestCertificates, any Error> = Result { try TestCertificates(makingIn: NSTemporaryDirectory() + "ennio-tls-\(UUID().uuidString)") }

    private init(makingIn directory: String) throws {
        self.directory = directory
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try makeAuthority("ca", subject: "/O=Ennio Events/CN=Ennio Test CA")
        try makeAuthority("other-ca", subject: "/O=Somebody Else/CN=Untrusted Test CA")
        try makeLeaf("server", subject: "/O=Ennio Events/CN=localhost", authority: "ca", extensions: Self.server(names: "DNS:localhost,IP:127.0.0.1,IP:::1"))
        try makeLeaf("wrong-name", subject: "/O=Ennio Events/CN=wrong.example", authority: "ca", extensions: Self.server(names: "DNS:wrong.example"))
        try makeLeaf("untrusted", subject: "/O=Somebody Else/CN=localhost", authority: "other-ca", extensions: Self.server(names: "DNS:localhost,IP:127.0.0.1,IP:::1"))
        try makeLeaf("client", subject: "/O=Ennio Events/CN=ennio-test-client", authority: "ca", extensions: """
            basicConstraints = CA:FALSE
            keyUsage = digitalSignature
            extendedKeyUsage = clientAuth
            """)
    }

    private static func server(names: String) -> String {
        """
        basicConstraints = CA:FALSE
        keyUsage = digitalSignature, keyEncipherment
        extendedKeyUsage = serverAuth
        subjectAltName = \(names)
        """
    }

    private func makeAuthority(_ name: String, subject: String) throws {
        try Self.openssl([
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", "\(directory)/\(name).key", "-out", "\(directory)/\(name).pem", "-days", "30", "-subj", subject,
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        ])
    }

    private func makeLeaf(_ name: String, subject: String, authority: String, extensions: String) throws {
        let extensionsFile = "\(directory)/\(name).ext"
        try extensions.write(toFile: extensionsFile, atomically: true, encoding: .utf8)
        try Self.openssl([
            "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", "\(directory)/\(name).key", "-out", "\(directory)/\(name).csr", "-subj", subject,
        ])
        try Self.openssl([
            "x509", "-req", "-in", "\(directory)/\(name).csr", "-CA", "\(directory)/\(authority).pem",
            "-CAkey", "\(directory)/\(authority).key", "-set_serial", String(UInt32.random(in: 1...UInt32.max)),
            "-days", "30", "-extfile", extensionsFile, "-out", "\(directory)/\(name).pem",
        ])
    }

    private static func openssl(_ arguments: [String]) throws {
        let searchPath = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        guard let binary = searchPath.split(separator: ":").map({ "\($0)/openssl" }).first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw TestSupportError(description: "the openssl command is missing: run scripts/test.sh (or install Debian's openssl)")
        }
        let logPath = NSTemporaryDirectory() + "ennio-openssl-\(UUID().uuidString).log"
        defer { try? FileManager.default.removeItem(atPath: logPath) }
        let process = try ChildProcess(executable: binary, arguments: arguments, outputPath: logPath)
        let status = process.waitForExit(timeout: .seconds(60))
        guard status == 0 else {
            let output = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            throw TestSupportError(description: "openssl \(arguments.joined(separator: " ")) failed (\(status.map(String.init) ?? "still running")):\n\(output)")
        }
    }
}
