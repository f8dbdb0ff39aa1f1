// `ennio`: the command-line front end of the event system. Each subcommand is a thin layer
// over the libraries; see `ennio --help`.
import EnnioEvents
import Foundation

let arguments = Array(CommandLine.arguments.dropFirst())
let status = await CommandLineTool.run(arguments)
// The work is done: end now. `exit` would first lock every stdio stream to flush it, and a
// thread blocked reading a pipe holds its stream's lock, so the process could outlive its
// work by as long as the pipe stays silent. Our output streams are flushed here instead.
fflush(nil)  // every output stream; input streams are not touched
_exit(status)
