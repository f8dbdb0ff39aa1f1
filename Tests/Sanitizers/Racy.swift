// A deliberately racy program, kept out of the test suite: scripts/sanitizer-check.sh builds it
// under ThreadSanitizer and expects a data-race report, proving that a sanitizer build of the
// project would see a real race. Built with -DGUARDED the same counter goes through the
// project's lock (`Locked`, pthread-backed in sanitizer builds) and must give no report.
import EnnioSync
import Foundation

nonisolated(unsafe) var unguarded = 0
let guarded = Locked(0)

let threads = (0..<4).map { _ in
    Thread {
        for _ in 0..<10_000 {
            #if GUARDED
            guarded.withLock { $0 += 1 }
            #else
            unguarded += 1
            #endif
        }
    }
}
threads.forEach { $0.start() }
while threads.contains(where: { !$0.isFinished }) { usleep(1000) }
#if GUARDED
print("guarded count \(guarded.withLock { $0 })")
#else
print("unguarded count \(unguarded)")
#endif
