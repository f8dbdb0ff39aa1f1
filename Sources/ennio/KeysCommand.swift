import NATSClient

/// `ennio keys`: NKEYs for setting up NKEY users and operators without other tools.
enum KeysCommand {
    static let help = """
        usage: ennio keys generate --kind user|account|operator|server|cluster

        Prints a new NKEY: its seed on the first line (a secret: store it in a file only its
        owner can read, e.g. `ennio keys generate --kind user > alice.nk`) and its public key on
        the second (for the server's configuration: authorization { users = [ { nkey: U… } ] }).
        A client then connects with --nkey alice.nk.
        """

    static func run(_ raw: [String]) throws -> Int32 {
        if raw.contains("--help") || raw.contains("-h") {
            print(help)
            return 0
        }
        let arguments = try Arguments(raw, options: ["kind"], positionals: ["what to do (generate)"])
        guard arguments.positionals == ["generate"] else {
            throw UsageError("unknown keys command \(arguments.positionals[0].debugDescription); the one there is: generate")
        }
        let name = try arguments.required("kind")
        guard let kind = NKey.Kind(name: name) else {
            throw UsageError("--kind must be user, account, operator, server or cluster, not \(name.debugDescription)")
        }
        let key = try NKey.generate(kind)
        print(key.seed)
        print(key.publicKey)
        return 0
    }
}
