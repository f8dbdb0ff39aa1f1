// The system SQLite (Debian: libsqlite3-dev), reached through this module map; no Swift package.
#include <sqlite3.h>
