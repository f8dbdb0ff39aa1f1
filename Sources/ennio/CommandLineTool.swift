import EnnioEvents
import Foundation
import NATSClient

/// Dispatches `ennio <subcommand> …` and maps failures to exit codes: 0 success, 1 failure,
/// 2 bad arguments.
enum CommandLineTool {
    static let usage = """
        usage: ennio <command> [options]

        commands:
          demo                       run a complete local system (server, coordinator, agents, subscriber)
          pub <EventType> …          publish one event
          sub <pattern> …            print events as they arrive
          history …                  ask the coordinator for stored events
          replay …                   print or re-publish a range of the history
          sessions                   the coordinator's session table
          nodes                      the coordinator's node table
          rollouts, rollout show ID  the coordinator's fleet rollouts
          runs, run resume-point ID  the coordinator's workflow runs and where one resumes
          coordinator …              run the lifecycle coordinator
          agent --host NAME …        run a node agent
          command <shutdown|health-check|kill> [--host H] …   send a fleet command to the agents (operators)
          session <start|list|show|kill> …   this host's sessions, which the agent observes
          topics [--markdown]        print the subject table (or the whole topics.md)
          topics check <subject>     check that a subject or pattern follows the event scheme
          bench <pub|sub|pubsub|req|js|kv|ordered|objects|events|ingest|sse|reducers|scale> …   throughput, latency and scale benchmarks
          keys generate --kind user|account|operator      a new NKEY seed and its public key

        \(Arguments.connectionHelp)

        Run `ennio <command> --help` for a command's options.
        """

    static func run(_ arguments: [String]) async -> Int32 {
        guard let command = arguments.first else {
            printError(usage)
            return 2
        }
        let rest = Array(arguments.dropFirst())
        do {
            switch command {
            case "topics": return try TopicsCommand.run(rest)
            case "pub": return try await PublishCommand.run(rest)
            case "sub": return try await SubscribeCommand.run(rest)
            case "history": return try await QueryCommands.history(rest)
            case "replay": return try await ReplayCommand.run(rest)
            case "sessions": return try await QueryCommands.sessions(rest)
            case "nodes": return try await QueryCommands.nodes(rest)
            case "rollouts": return try await FamilyCommands.rollouts(rest)
            case "rollout": return try await FamilyCommands.rollout(rest)
            case "runs": return try await FamilyCommands.runs(rest)
            case "run": return try await FamilyCommands.run(rest)
            case "coordinator": return try await CoordinatorCommand.run(rest)
            case "agent": return try await AgentCommand.run(rest)
            case "command": return try await FleetCommand.run(rest)
            case "session": return try await SessionCommand.run(rest)
            case "demo": return try await DemoCommand.run(rest)
            case "bench": return try await BenchCommand.run(rest)
            case "keys": return try KeysCommand.run(rest)
            case "--help", "-h", "help":
                print(usage)
                return 0
            default:
                throw UsageError("unknown command \(command.debugDescription)")
            }
        } catch let error as UsageError {
            printError("ennio \(TerminalText(command)): \(TerminalText(error.message))")
            printError("run `ennio \(TerminalText(command)) --help` for usage")
            return 2
        } catch let error as NATSError where error.code == .permissionViolation {
            // The server's own words, and what they mean here.
            printError("ennio \(command): \(TerminalText(error.message)): this user's role may not do that (see the README's deployment section)")
            return 1
        } catch {
            // An error may quote what came off the wire (a reply, a server's message).
            printError("ennio \(command): \(TerminalText(error))")
            return 1
        }
    }
}

/// Bad command-line arguments: exit code 2.
struct UsageError: Error {
    let message: String
    init(_ message: String) { self.message = message }
}

/// One line on standard output, unbuffered: a pipe reader sees each as it is printed, and
/// lines on standard error keep their place among them.
func printLine(_ text: String) {
    FileHandle.standardOutput.write(Data((text + "\n").utf8))
}

func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}
