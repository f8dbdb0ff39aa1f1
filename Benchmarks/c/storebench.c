/*
 * storebench: the coordinator's SQLite inserts written directly in C, as a ceiling for
 * `ennio bench ingest --store-only` (EventStore.insert).
 *
 *   storebench COUNT BATCH
 *
 * Same database settings as EventStore (16 KiB pages, WAL, synchronous=NORMAL, 16 MiB page
 * cache, WAL checkpoint every 32 MiB), the same schema (version 3: the table, the unique key
 * on timestamp and id, the project and session indexes), the same INSERT OR IGNORE, BATCH rows per
 * transaction, random version 4 UUIDs as ids and rows shaped like the Swift benchmark's
 * events (six types, five projects, fifty sessions, about 300 bytes of JSON). Each batch's
 * rows (JSON text included) are made before its part of the clock starts, as the Swift figure
 * makes its events; the Swift figure also encodes each event's JSON inside the clock.
 *
 * Prints `RESULT store events_per_sec=…`, the figure `ennio bench ingest --store-only` prints.
 * Build: cc -O2 -o storebench storebench.c -lsqlite3
 */
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void check(sqlite3 *db, int code, const char *what) {
    if (code != SQLITE_OK && code != SQLITE_DONE && code != SQLITE_ROW) {
        fprintf(stderr, "storebench: %s: %s\n", what, sqlite3_errmsg(db));
        exit(1);
    }
}

static void exec(sqlite3 *db, const char *sql) {
    char *error = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &error) != SQLITE_OK) {
        fprintf(stderr, "storebench: %s: %s\n", sql, error ? error : "?");
        exit(1);
    }
}

static void random_uuid(char out[37]) {
    unsigned char bytes[16];
    if (getrandom(bytes, sizeof bytes, 0) != sizeof bytes) {
        perror("getrandom");
        exit(1);
    }
    bytes[6] = (bytes[6] & 0x0F) | 0x40;
    bytes[8] = (bytes[8] & 0x3F) | 0x80;
    static const char hex[] = "0123456789abcdef";
    int w = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) out[w++] = '-';
        out[w++] = hex[bytes[i] >> 4];
        out[w++] = hex[bytes[i] & 0x0F];
    }
    out[w] = 0;
}

typedef struct {
    char id[37];
    const char *type;
    const char *category;
    int priority;
    char session[16];
    char project[16];
    int64_t timestamp;
    char subject[64];
    char json[512];
} Row;

static const char *types[] = {"ci.passing", "ci.failing", "pr.created", "review.pending", "merge.ready", "reaction.triggered"};
static const char *categories[] = {"ci", "ci", "pr", "review", "merge", "reaction"};
static const char *actions[] = {"passing", "failing", "created", "pending", "ready", "triggered"};

/* Row number i, shaped like the Swift benchmark's i-th event. */
static void make_row(Row *r, long i) {
    int64_t base = 1763780000000000000LL;
    random_uuid(r->id);
    r->type = types[i % 6];
    r->category = categories[i % 6];
    r->priority = i % 7 == 0 ? 2 : 0;
    snprintf(r->session, sizeof r->session, "session-%ld", i % 50);
    snprintf(r->project, sizeof r->project, "project-%ld", i % 5);
    r->timestamp = base + i * 1000;
    snprintf(r->subject, sizeof r->subject, "ennio.%s.%s.%s", r->category, r->project, actions[i % 6]);
    snprintf(r->json, sizeof r->json,
             "{\"id\":\"%s\",\"event_type\":\"%s\",\"priority\":\"%s\",\"session_id\":\"%s\",\"project_id\":\"%s\","
             "\"timestamp\":\"2025-11-22T02:53:20.%09ldZ\",\"message\":\"benchmark event %ld: CI for branch feature/faster-publish\","
             "\"data\":{\"attempt\":3,\"branch\":\"feature/faster-publish\"}}",
             r->id, r->type, r->priority ? "urgent" : "info", r->session, r->project, (i * 1000) % 1000000000, i);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: storebench COUNT BATCH\n");
        return 2;
    }
    long count = atol(argv[1]);
    long batch = atol(argv[2]);
    if (count <= 0 || batch <= 0) {
        fprintf(stderr, "storebench: COUNT and BATCH must be positive\n");
        return 2;
    }
    char path[] = "/tmp/storebench-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) {
        perror("mkstemp");
        return 1;
    }
    close(fd);

    Row *rows = calloc((size_t)batch, sizeof(Row));
    if (!rows) {
        perror("calloc");
        return 1;
    }
    sqlite3 *db;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        fprintf(stderr, "storebench: cannot open %s\n", path);
        return 1;
    }
    sqlite3_busy_timeout(db, 5000);
    exec(db, "PRAGMA page_size = 16384");
    exec(db, "PRAGMA journal_mode = WAL");
    exec(db, "PRAGMA synchronous = NORMAL");
    exec(db, "PRAGMA cache_size = -16384");
    exec(db, "PRAGMA wal_autocheckpoint = 2048");
    exec(db,
         "CREATE TABLE events (id TEXT NOT NULL, event_type TEXT NOT NULL, category TEXT NOT NULL,"
         " priority INTEGER NOT NULL, session_id TEXT NOT NULL, project_id TEXT NOT NULL, timestamp_ns INTEGER NOT NULL,"
         " subject TEXT NOT NULL, json TEXT NOT NULL, stored_at_ns INTEGER NOT NULL);"
         "CREATE UNIQUE INDEX events_key ON events (timestamp_ns, id);"
         "CREATE INDEX events_project ON events (project_id, timestamp_ns);"
         "CREATE INDEX events_session ON events (session_id, timestamp_ns);");
    sqlite3_stmt *insert;
    check(db,
          sqlite3_prepare_v2(db,
                             "INSERT OR IGNORE INTO events (id, event_type, category, priority, session_id, project_id,"
                             " timestamp_ns, subject, json, stored_at_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                             -1, &insert, NULL),
          "prepare");

    /* Each batch's rows are made before its part of the clock starts. */
    int64_t elapsed = 0;
    for (long i = 0; i < count; i += batch) {
        long n = count - i < batch ? count - i : batch;
        for (long j = 0; j < n; j++) make_row(&rows[j], i + j);
        int64_t start = now_ns();
        exec(db, "BEGIN");
        int64_t stored_at = now_ns();
        for (long j = 0; j < n; j++) {
            Row *r = &rows[j];
            sqlite3_bind_text(insert, 1, r->id, -1, SQLITE_STATIC);
            sqlite3_bind_text(insert, 2, r->type, -1, SQLITE_STATIC);
            sqlite3_bind_text(insert, 3, r->category, -1, SQLITE_STATIC);
            sqlite3_bind_int64(insert, 4, r->priority);
            sqlite3_bind_text(insert, 5, r->session, -1, SQLITE_STATIC);
            sqlite3_bind_text(insert, 6, r->project, -1, SQLITE_STATIC);
            sqlite3_bind_int64(insert, 7, r->timestamp);
            sqlite3_bind_text(insert, 8, r->subject, -1, SQLITE_STATIC);
            sqlite3_bind_text(insert, 9, r->json, -1, SQLITE_STATIC);
            sqlite3_bind_int64(insert, 10, stored_at);
            check(db, sqlite3_step(insert), "insert");
            sqlite3_reset(insert);
        }
        exec(db, "COMMIT");
        elapsed += now_ns() - start;
    }
    sqlite3_finalize(insert);
    sqlite3_close(db);
    char wal[64], shm[64];
    snprintf(wal, sizeof wal, "%s-wal", path);
    snprintf(shm, sizeof shm, "%s-shm", path);
    unlink(path);
    unlink(wal);
    unlink(shm);
    free(rows);

    double seconds = elapsed > 0 ? (double)elapsed / 1e9 : 1e-9;
    double rate = (double)count / seconds;
    printf("store (C): %ld rows in %.3f s: %.0f rows/s\n", count, seconds, rate);
    printf("RESULT store events_per_sec=%.0f mb_per_sec=0.00\n", rate);
    return 0;
}
