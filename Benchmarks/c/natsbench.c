/*
 * natsbench: the C client (libnats) doing the same work as `ennio bench` for comparison.
 *
 *   natsbench pub    URL COUNT SIZE   publish COUNT messages of SIZE bytes, then flush
 *   natsbench pubsub URL COUNT SIZE   one publisher and one subscriber connection
 *   natsbench req    URL COUNT SIZE   sequential request/reply round trips (responder on
 *                                     another connection); p50/p99/mean latency in µs
 *   natsbench js     URL COUNT SIZE   JetStream asynchronous publish (js_PublishAsync, at most
 *                                     256 pending) to a memory stream it creates, then
 *                                     js_PublishAsyncComplete; msgs/s acknowledged
 *   natsbench kv     URL COUNT SIZE   Key-Value: COUNT sequential kvStore_Put round trips, then
 *                                     COUNT kvStore_Get, on a memory bucket it creates (keys
 *                                     k0…k999); p50/p99/mean latency in µs of each
 *   natsbench ordered URL COUNT SIZE  COUNT messages stored in a memory stream, then read by
 *                                     an ordered consumer (js_SubscribeSync, Ordered); msgs/s
 *                                     from its creation to the last message
 *
 * With NATS_CA set (as for the nats command and ennio), connections use TLS and trust that
 * CA file: the TLS figures beside `ennio bench … --tlsca FILE`.
 *
 * Prints the same `RESULT <figure> key=value …` lines as `ennio bench`.
 * Build: cc -O2 -o natsbench natsbench.c -lnats
 */
#include <nats/nats.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SUBJECT "ennio.bench"

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void check(natsStatus s, const char *what) {
    if (s != NATS_OK) {
        fprintf(stderr, "natsbench: %s: %s\n", what, natsStatus_GetText(s));
        nats_PrintLastErrorStack(stderr);
        exit(1);
    }
}

static void rate_report(const char *figure, long count, long size, int64_t elapsed_ns) {
    double secs = (double)elapsed_ns / 1e9;
    if (secs <= 0) secs = 1e-9;
    double rate = (double)count / secs;
    double mb = (double)count * (double)size / secs / 1e6;
    printf("%s: %ld msgs in %.3f s: %.0f msgs/s, %.1f MB/s\n", figure, count, secs, rate, mb);
    printf("RESULT %s msgs_per_sec=%.0f mb_per_sec=%.2f\n", figure, rate, mb);
    fflush(stdout);
}

/* sendAsap: write each operation at once instead of through the flusher thread, which waits
 * about a millisecond before sending; used for the latency figure, where it is libnats's best. */
static natsConnection *connect_with(const char *url, const char *name, bool sendAsap) {
    natsOptions *opts = NULL;
    natsConnection *nc = NULL;
    check(natsOptions_Create(&opts), "options");
    check(natsOptions_SetURL(opts, url), "url");
    check(natsOptions_SetName(opts, name), "name");
    check(natsOptions_SetAllowReconnect(opts, false), "reconnect");
    check(natsOptions_SetSendAsap(opts, sendAsap), "send asap");
    const char *ca = getenv("NATS_CA");
    if (ca != NULL && ca[0] != '\0') {
        check(natsOptions_SetSecure(opts, true), "TLS");
        check(natsOptions_LoadCATrustedCertificates(opts, ca), "CA file");
    }
    check(natsConnection_Connect(&nc, opts), "connect");
    natsOptions_Destroy(opts);
    return nc;
}

static natsConnection *connect_to(const char *url, const char *name) { return connect_with(url, name, false); }

static char *make_payload(long size) {
    char *data = malloc(size > 0 ? size : 1);
    for (long i = 0; i < size; i++) data[i] = (char)('a' + i % 26);
    return data;
}

static void bench_pub(const char *url, long count, long size) {
    natsConnection *nc = connect_to(url, "natsbench pub");
    char *data = make_payload(size);
    int64_t start = now_ns();
    for (long i = 0; i < count; i++) check(natsConnection_Publish(nc, SUBJECT, data, (int)size), "publish");
    check(natsConnection_FlushTimeout(nc, 120000), "flush");
    int64_t elapsed = now_ns() - start;
    char figure[32];
    snprintf(figure, sizeof figure, "pub%ld", size);
    rate_report(figure, count, size, elapsed);
    natsConnection_Destroy(nc);
    free(data);
}

struct counter {
    pthread_mutex_t lock;
    pthread_cond_t done;
    long target;
    long received;
    int64_t last;
};

static void on_message(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure) {
    struct counter *c = closure;
    (void)nc;
    (void)sub;
    natsMsg_Destroy(msg);
    c->received++;
    if (c->received == c->target) {
        pthread_mutex_lock(&c->lock);
        c->last = now_ns();
        pthread_cond_signal(&c->done);
        pthread_mutex_unlock(&c->lock);
    }
}

static void bench_pubsub(const char *url, long count, long size) {
    natsConnection *sc = connect_to(url, "natsbench subscriber");
    natsConnection *pc = connect_to(url, "natsbench publisher");
    struct counter c = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, count, 0, 0};
    natsSubscription *sub = NULL;
    check(natsConnection_Subscribe(&sub, sc, SUBJECT, on_message, &c), "subscribe");
    check(natsSubscription_SetPendingLimits(sub, 1 << 20, 256 * 1024 * 1024), "pending limits");
    check(natsConnection_Flush(sc), "flush subscriber");
    char *data = make_payload(size);
    int64_t start = now_ns();
    for (long i = 0; i < count; i++) check(natsConnection_Publish(pc, SUBJECT, data, (int)size), "publish");
    check(natsConnection_FlushTimeout(pc, 120000), "flush");
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 30;
    pthread_mutex_lock(&c.lock);
    while (c.last == 0) {
        if (pthread_cond_timedwait(&c.done, &c.lock, &deadline) != 0) break;
    }
    pthread_mutex_unlock(&c.lock);
    int64_t last = c.last ? c.last : now_ns();
    int64_t dropped = 0;
    natsSubscription_GetDropped(sub, &dropped);
    char figure[32];
    snprintf(figure, sizeof figure, "pubsub%ld", size);
    rate_report(figure, c.received, size, last - start);
    if (c.received < count)
        fprintf(stderr, "natsbench pubsub: received %ld of %ld (%lld dropped)\n", c.received, count, (long long)dropped);
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
    natsConnection_Destroy(pc);
    natsConnection_Destroy(sc);
    free(data);
}

static void on_request(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure) {
    (void)sub;
    (void)closure;
    const char *reply = natsMsg_GetReply(msg);
    if (reply != NULL) natsConnection_Publish(nc, reply, natsMsg_GetData(msg), natsMsg_GetDataLength(msg));
    natsMsg_Destroy(msg);
}

static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Sorts `samples` and prints the latency figure `figure` (p50, p99, mean in µs). */
static void latency_report(const char *figure, double *samples, long count) {
    double sum = 0;
    for (long i = 0; i < count; i++) sum += samples[i];
    qsort(samples, count, sizeof(double), compare_doubles);
    long i99 = count * 99 / 100;
    if (i99 > count - 1) i99 = count - 1;
    double p50 = samples[count / 2], p99 = samples[i99], mean = sum / (double)count;
    printf("%s: %ld round trips: p50 %.1f µs, p99 %.1f µs, mean %.1f µs\n", figure, count, p50, p99, mean);
    printf("RESULT %s p50_us=%.2f p99_us=%.2f mean_us=%.2f\n", figure, p50, p99, mean);
    fflush(stdout);
}

static void bench_req(const char *url, long count, long size) {
    natsConnection *rc = connect_with(url, "natsbench responder", true);
    natsConnection *qc = connect_with(url, "natsbench requester", true);
    natsSubscription *sub = NULL;
    check(natsConnection_Subscribe(&sub, rc, SUBJECT, on_request, NULL), "subscribe");
    check(natsConnection_Flush(rc), "flush responder");
    char *data = make_payload(size);
    natsMsg *reply = NULL;
    for (long i = 0; i < (count < 100 ? count : 100); i++) {
        check(natsConnection_Request(&reply, qc, SUBJECT, data, (int)size, 5000), "request");
        natsMsg_Destroy(reply);
    }
    double *samples = malloc(sizeof(double) * count);
    for (long i = 0; i < count; i++) {
        int64_t start = now_ns();
        check(natsConnection_Request(&reply, qc, SUBJECT, data, (int)size, 5000), "request");
        natsMsg_Destroy(reply);
        samples[i] = (double)(now_ns() - start) / 1e3;
    }
    char figure[32];
    snprintf(figure, sizeof figure, "req%ld", size);
    latency_report(figure, samples, count);
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
    natsConnection_Destroy(qc);
    natsConnection_Destroy(rc);
    free(samples);
    free(data);
}

#define JS_STREAM "ENNIO_BENCH_JS"
#define JS_SUBJECT "bench.js"

static long js_errors = 0;

static void on_js_error(jsCtx *js, jsPubAckErr *pae, void *closure) {
    (void)js;
    (void)closure;
    if (js_errors++ == 0) fprintf(stderr, "natsbench js: publish failed: %s\n", pae->ErrText ? pae->ErrText : natsStatus_GetText(pae->Err));
}

/* A JetStream context (asynchronous publishing, at most 256 pending, errors counted) and a
 * fresh memory stream `stream` on `subject`. */
static jsCtx *memory_stream(natsConnection *nc, jsOptions *jo, const char *stream, const char *subject) {
    jsCtx *js = NULL;
    jsErrCode jerr = 0;
    check(jsOptions_Init(jo), "js options");
    jo->Wait = 30000;
    jo->PublishAsync.MaxPending = 256;
    jo->PublishAsync.ErrHandler = on_js_error;
    check(natsConnection_JetStream(&js, nc, jo), "jetstream");
    js_DeleteStream(js, stream, NULL, &jerr);
    jsStreamConfig sc;
    check(jsStreamConfig_Init(&sc), "stream config");
    const char *subjects[] = {subject};
    sc.Name = stream;
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    sc.Storage = js_MemoryStorage;
    jsStreamInfo *si = NULL;
    check(js_AddStream(&si, js, &sc, NULL, &jerr), "add stream");
    jsStreamInfo_Destroy(si);
    return js;
}

/* Publishes `count` messages asynchronously and waits for every acknowledgement. */
static void publish_all(jsCtx *js, const char *subject, const char *data, long size, long count) {
    jsPubOptions po;
    check(jsPubOptions_Init(&po), "publish options");
    po.MaxWait = 30000;
    for (long i = 0; i < count; i++) check(js_PublishAsync(js, subject, data, (int)size, NULL), "publish async");
    check(js_PublishAsyncComplete(js, &po), "publish async complete");
}

static void bench_js(const char *url, long count, long size) {
    natsConnection *nc = connect_to(url, "natsbench js");
    jsOptions jo;
    jsErrCode jerr = 0;
    jsCtx *js = memory_stream(nc, &jo, JS_STREAM, JS_SUBJECT);
    char *data = make_payload(size);
    int64_t start = now_ns();
    publish_all(js, JS_SUBJECT, data, size, count);
    int64_t elapsed = now_ns() - start;
    jsStreamInfo *si = NULL;
    check(js_GetStreamInfo(&si, js, JS_STREAM, NULL, &jerr), "stream info");
    uint64_t stored = si->State.Msgs;
    jsStreamInfo_Destroy(si);
    js_DeleteStream(js, JS_STREAM, NULL, &jerr);
    if (js_errors > 0 || stored != (uint64_t)count) {
        fprintf(stderr, "natsbench js: %ld errors, %llu messages in the stream, expected %ld\n", js_errors, (unsigned long long)stored, count);
        exit(1);
    }
    char figure[32];
    snprintf(figure, sizeof figure, "js%ld", size);
    rate_report(figure, count, size, elapsed);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    free(data);
}

#define KV_BUCKET "ENNIO_BENCH_KV"

static void bench_kv(const char *url, long count, long size) {
    natsConnection *nc = connect_with(url, "natsbench kv", true);
    jsCtx *js = NULL;
    jsOptions jo;
    check(jsOptions_Init(&jo), "js options");
    jo.Wait = 30000;
    check(natsConnection_JetStream(&js, nc, &jo), "jetstream");
    js_DeleteKeyValue(js, KV_BUCKET);
    kvConfig kc;
    check(kvConfig_Init(&kc), "kv config");
    kc.Bucket = KV_BUCKET;
    kc.History = 1;
    kc.StorageType = js_MemoryStorage;
    kvStore *kv = NULL;
    check(js_CreateKeyValue(&kv, js, &kc), "create bucket");
    char *data = make_payload(size);
    char key[32];
    double *samples = malloc(sizeof(double) * count);
    uint64_t revision = 0;
    for (long i = 0; i < (count < 100 ? count : 100); i++) {
        snprintf(key, sizeof key, "k%ld", i % 1000);
        check(kvStore_Put(&revision, kv, key, data, (int)size), "put");
    }
    for (long i = 0; i < count; i++) {
        snprintf(key, sizeof key, "k%ld", i % 1000);
        int64_t start = now_ns();
        check(kvStore_Put(&revision, kv, key, data, (int)size), "put");
        samples[i] = (double)(now_ns() - start) / 1e3;
    }
    char figure[32];
    snprintf(figure, sizeof figure, "kvput%ld", size);
    latency_report(figure, samples, count);
    for (long i = 0; i < count; i++) {
        snprintf(key, sizeof key, "k%ld", i % (count < 1000 ? count : 1000));
        kvEntry *entry = NULL;
        int64_t start = now_ns();
        check(kvStore_Get(&entry, kv, key), "get");
        samples[i] = (double)(now_ns() - start) / 1e3;
        if (kvEntry_ValueLen(entry) != (int)size) {
            fprintf(stderr, "natsbench kv: a value of %d bytes, expected %ld\n", kvEntry_ValueLen(entry), size);
            exit(1);
        }
        kvEntry_Destroy(entry);
    }
    snprintf(figure, sizeof figure, "kvget%ld", size);
    latency_report(figure, samples, count);
    kvStore_Destroy(kv);
    js_DeleteKeyValue(js, KV_BUCKET);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    free(samples);
    free(data);
}

#define ORDERED_STREAM "ENNIO_BENCH_ORDERED"
#define ORDERED_SUBJECT "bench.ordered"

static void bench_ordered(const char *url, long count, long size) {
    natsConnection *nc = connect_to(url, "natsbench ordered");
    jsOptions jo;
    jsErrCode jerr = 0;
    jsCtx *js = memory_stream(nc, &jo, ORDERED_STREAM, ORDERED_SUBJECT);
    char *data = make_payload(size);
    publish_all(js, ORDERED_SUBJECT, data, size, count);

    jsSubOptions so;
    check(jsSubOptions_Init(&so), "subscribe options");
    so.Stream = ORDERED_STREAM;
    so.Ordered = true;
    natsSubscription *sub = NULL;
    int64_t start = now_ns();
    check(js_SubscribeSync(&sub, js, ORDERED_SUBJECT, &jo, &so, &jerr), "ordered consumer");
    /* The same pending limits as the Swift client's subscriptions (65,536 messages, 64 MiB). */
    check(natsSubscription_SetPendingLimits(sub, 65536, 64 * 1024 * 1024), "pending limits");
    for (long i = 0; i < count; i++) {
        natsMsg *msg = NULL;
        check(natsSubscription_NextMsg(&msg, sub, 30000), "next message");
        if (natsMsg_GetDataLength(msg) != (int)size) {
            fprintf(stderr, "natsbench ordered: a message of %d bytes, expected %ld\n", natsMsg_GetDataLength(msg), size);
            exit(1);
        }
        natsMsg_Destroy(msg);
    }
    int64_t elapsed = now_ns() - start;
    char figure[32];
    snprintf(figure, sizeof figure, "ordered%ld", size);
    rate_report(figure, count, size, elapsed);
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
    js_DeleteStream(js, ORDERED_STREAM, NULL, &jerr);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    free(data);
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: natsbench <pub|pubsub|req|js|kv|ordered> URL COUNT SIZE\n");
        return 2;
    }
    const char *mode = argv[1];
    const char *url = argv[2];
    char *end = NULL;
    long count = strtol(argv[3], &end, 10);
    if (*end != '\0' || count <= 0) {
        fprintf(stderr, "natsbench: COUNT must be a positive whole number\n");
        return 2;
    }
    long size = strtol(argv[4], &end, 10);
    if (*end != '\0' || size < 0) {
        fprintf(stderr, "natsbench: SIZE must be a whole number >= 0\n");
        return 2;
    }
    if (strcmp(mode, "pub") == 0) {
        bench_pub(url, count, size);
    } else if (strcmp(mode, "pubsub") == 0) {
        bench_pubsub(url, count, size);
    } else if (strcmp(mode, "req") == 0) {
        bench_req(url, count, size);
    } else if (strcmp(mode, "js") == 0) {
        bench_js(url, count, size);
    } else if (strcmp(mode, "kv") == 0) {
        bench_kv(url, count, size);
    } else if (strcmp(mode, "ordered") == 0) {
        bench_ordered(url, count, size);
    } else {
        fprintf(stderr, "natsbench: unknown mode %s\n", mode);
        return 2;
    }
    nats_Close();
    return 0;
}
