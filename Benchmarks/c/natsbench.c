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
    double sum = 0;
    for (long i = 0; i < count; i++) {
        int64_t start = now_ns();
        check(natsConnection_Request(&reply, qc, SUBJECT, data, (int)size, 5000), "request");
        natsMsg_Destroy(reply);
        samples[i] = (double)(now_ns() - start) / 1e3;
        sum += samples[i];
    }
    qsort(samples, count, sizeof(double), compare_doubles);
    double p50 = samples[count / 2];
    long i99 = count * 99 / 100;
    if (i99 > count - 1) i99 = count - 1;
    double p99 = samples[i99];
    double mean = sum / (double)count;
    printf("req%ld: %ld round trips: p50 %.1f µs, p99 %.1f µs, mean %.1f µs\n", size, count, p50, p99, mean);
    printf("RESULT req%ld p50_us=%.2f p99_us=%.2f mean_us=%.2f\n", size, p50, p99, mean);
    fflush(stdout);
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

static void bench_js(const char *url, long count, long size) {
    natsConnection *nc = connect_to(url, "natsbench js");
    jsCtx *js = NULL;
    jsOptions jo;
    jsErrCode jerr = 0;
    check(jsOptions_Init(&jo), "js options");
    jo.Wait = 30000;
    jo.PublishAsync.MaxPending = 256;
    jo.PublishAsync.ErrHandler = on_js_error;
    check(natsConnection_JetStream(&js, nc, &jo), "jetstream");
    js_DeleteStream(js, JS_STREAM, NULL, &jerr);
    jsStreamConfig sc;
    check(jsStreamConfig_Init(&sc), "stream config");
    const char *subjects[] = {JS_SUBJECT};
    sc.Name = JS_STREAM;
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    sc.Storage = js_MemoryStorage;
    jsStreamInfo *si = NULL;
    check(js_AddStream(&si, js, &sc, NULL, &jerr), "add stream");
    jsStreamInfo_Destroy(si);
    char *data = make_payload(size);
    jsPubOptions po;
    check(jsPubOptions_Init(&po), "publish options");
    po.MaxWait = 30000;
    int64_t start = now_ns();
    for (long i = 0; i < count; i++) check(js_PublishAsync(js, JS_SUBJECT, data, (int)size, NULL), "publish async");
    check(js_PublishAsyncComplete(js, &po), "publish async complete");
    int64_t elapsed = now_ns() - start;
    si = NULL;
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

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: natsbench <pub|pubsub|req|js> URL COUNT SIZE\n");
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
    } else {
        fprintf(stderr, "natsbench: unknown mode %s\n", mode);
        return 2;
    }
    nats_Close();
    return 0;
}
