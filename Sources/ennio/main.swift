// `ennio`: the command-line front end of the event system. Each subcommand is a thin layer
// over the libraries; see `ennio --help`.
import EnnioEvents
import Foundation

let arguments = Array(CommandLine.arguments.dropFirst())
let status = await CommandLineTool.run(arguments)
exit(status)
