/* bench/wsclient.c: bench/client.py in C, for when the client must cost far less than the
 * server it measures. Same JSON-line commands on stdin/stdout (connect, ready, mark, collect,
 * close, quit), same counting and the same replies: a frame's messages are counted by their
 * "seq": keys, the first and last seq show holes, the "t": stamps of the first and last
 * message give their latencies (against the wall clock, as time.time()), SPREAD points in
 * between go into the same log histogram. Plain C, libc only, one epoll loop.
 * Build: cc -O2 -o bench/.build/wsclient bench/wsclient.c */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUCKETS 931
#define BUCKET_RATIO 1.02
#define BUCKET_FIRST_S 1e-6
#define SPREAD 8
#define MAX_ERRORS 5
#define CONCURRENCY 50
#define READ_SIZE (1 << 20)

enum { C_CONNECTING, C_HANDSHAKE, C_OPEN, C_CLOSED };

typedef struct {
    int fd, state, topic;
    char *buf;           /* bytes not yet parsed (handshake or a partial frame) */
    size_t len, cap;
    char *frag;          /* fragments of a message not yet whole */
    size_t flen, fcap;
    long long last, received, missing, gaps;
    int fresh, close_wanted;
    char close_reason[128];
    char url[512];
    char request[1024];
    size_t req_len, req_sent;
    double started;
} Conn;

static Conn *conns;
static int nconns, capconns;
static char **topics;
static int ntopics;
static char errors[MAX_ERRORS][256];
static int nerrors;
static int epfd;
static char *rbuf;

/* Stats since the last mark (the histogram is filled as frames arrive). */
static double hist[BUCKETS], edges[BUCKETS + 1], log_ratio;
static long long frames;
static double first_recv, last_recv, max_s;

static double now_wall(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double now_mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void add_error(const char *s) {
    if (nerrors < MAX_ERRORS) snprintf(errors[nerrors++], sizeof errors[0], "%s", s);
}

static void reset_stats(void) {
    memset(hist, 0, sizeof hist);
    frames = 0;
    first_recv = last_recv = max_s = 0.0;
}

/* np.histogram over EDGES of the value clipped to [EDGES[0], EDGES[-1]]. */
static void hist_add(double x, double w) {
    if (!(x >= edges[0])) x = edges[0];
    if (x > edges[BUCKETS]) x = edges[BUCKETS];
    int i = (int)(log(x / BUCKET_FIRST_S) / log_ratio);
    if (i < 0) i = 0;
    if (i > BUCKETS - 1) i = BUCKETS - 1;
    while (i > 0 && x < edges[i]) i--;
    while (i < BUCKETS - 1 && x >= edges[i + 1]) i++;
    hist[i] += w;
}

static const char *find(const char *hay, const char *end, const char *needle, size_t n) {
    if (hay >= end) return NULL;
    return memmem(hay, end - hay, needle, n);
}

static const char *rfind(const char *hay, const char *end, const char *needle, size_t n) {
    for (const char *p = end - n; p >= hay; p--)
        if (*p == needle[0] && memcmp(p, needle, n) == 0) return p;
    return NULL;
}

/* The JSON number after the key at `at` (client.py's _number). */
static double number(const char *at, const char *end) {
    const char *colon = memchr(at, ':', end - at);
    if (!colon) return 0;
    char tmp[64];
    size_t n = 0;
    for (const char *p = colon + 1; p < end && *p != ',' && *p != '}' && n < sizeof tmp - 1; p++)
        tmp[n++] = *p;
    tmp[n] = 0;
    return strtod(tmp, NULL);
}

static const char SEQ[] = "\"seq\":", STAMP[] = "\"t\":";
#define SEQ_N (sizeof SEQ - 1)
#define STAMP_N (sizeof STAMP - 1)

static int starts(const char *p, const char *end, const char *prefix) {
    size_t n = strlen(prefix);
    return (size_t)(end - p) >= n && memcmp(p, prefix, n) == 0;
}

static void other(Conn *c, const char *p, const char *end) {
    if (find(p, end, "\"type\":\"gap\"", 12) || find(p, end, "\"type\": \"gap\"", 13)) {
        if (c->fresh) return;
        const char *from = find(p, end, "\"from_seq\"", 10), *to = find(p, end, "\"to_seq\"", 8);
        if (from && to) c->gaps += (long long)number(to, end) - (long long)number(from, end) + 1;
    } else if (find(p, end, "\"type\":\"error\"", 14) || find(p, end, "\"type\": \"error\"", 15)) {
        char s[201];
        size_t n = end - p < 200 ? (size_t)(end - p) : 200;
        memcpy(s, p, n);
        s[n] = 0;
        add_error(s);
    }
}

static void message(Conn *c, const char *p, const char *end, double now) {
    if (!starts(p, end, "{\"type\":\"message\"") && !starts(p, end, "{\"type\":\"batch\"") &&
        !starts(p, end, "{\"type\": \"message\"")) {
        other(c, p, end);
        return;
    }
    long long n = 0;
    for (const char *q = p; (q = find(q, end, SEQ, SEQ_N)); q += SEQ_N) n++;
    if (!n) return;
    const char *i = find(p, end, SEQ, SEQ_N);
    long long first = (long long)number(i, end), last = first;
    const char *t = find(i, end, STAMP, STAMP_N);
    double lat_first = now - (t ? number(t, end) : 0), lat_last = lat_first;
    if (n > 1) {
        last = (long long)number(rfind(p, end, SEQ, SEQ_N), end);
        const char *tl = rfind(p, end, STAMP, STAMP_N);
        lat_last = now - (tl ? number(tl, end) : 0);
        if (last - first + 1 != n) c->missing += last - first + 1 - n;
    }
    if (c->fresh)
        c->fresh = 0;
    else if (first != c->last + 1 && c->last >= 0)
        c->missing += first - c->last - 1;
    c->last = last;
    c->received += n;
    for (int k = 0; k < SPREAD; k++) {
        double frac = (double)k / (SPREAD - 1);
        hist_add(lat_last + (lat_first - lat_last) * frac, (double)n / SPREAD);
    }
    if (frames == 0 || lat_first > max_s) max_s = lat_first;
    frames++;
    if (!first_recv) first_recv = now;
    last_recv = now;
}

static void write_all(Conn *c, const char *data, size_t n) {
    while (n) {
        ssize_t w = send(c->fd, data, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            return; /* control frames are small; a full buffer or dead peer: dropped */
        }
        data += w;
        n -= w;
    }
}

/* Client frames are masked (RFC 6455 5.3); only control frames (< 126 bytes) are sent. */
static void send_frame(Conn *c, int opcode, const char *payload, size_t n) {
    if (c->state != C_OPEN || n > 125) return;
    unsigned char out[2 + 4 + 125], mask[4];
    uint32_t r = (uint32_t)random();
    memcpy(mask, &r, 4);
    out[0] = 0x80 | opcode;
    out[1] = 0x80 | n;
    memcpy(out + 2, mask, 4);
    for (size_t k = 0; k < n; k++) out[6 + k] = payload[k] ^ mask[k % 4];
    write_all(c, (char *)out, 6 + n);
}

static void conn_close(Conn *c) {
    if (c->state == C_CLOSED) return;
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->state = C_CLOSED;
    free(c->buf);
    free(c->frag);
    c->buf = c->frag = NULL;
    c->len = c->cap = c->flen = c->fcap = 0;
}

static void append(char **buf, size_t *len, size_t *cap, const char *p, size_t n) {
    if (*len + n > *cap) {
        *cap = (*len + n) * 2;
        *buf = realloc(*buf, *cap);
    }
    memcpy(*buf + *len, p, n);
    *len += n;
}

/* Parses whole frames from p; returns the bytes consumed. */
static size_t frames_in(Conn *c, const char *p, size_t size, double now) {
    const unsigned char *u = (const unsigned char *)p;
    size_t pos = 0;
    while (size - pos >= 2 && c->state == C_OPEN) {
        unsigned b0 = u[pos], b1 = u[pos + 1];
        uint64_t length = b1 & 0x7F;
        size_t head = 2;
        if (length == 126) {
            if (size - pos < 4) break;
            length = (uint64_t)u[pos + 2] << 8 | u[pos + 3];
            head = 4;
        } else if (length == 127) {
            if (size - pos < 10) break;
            length = 0;
            for (int k = 0; k < 8; k++) length = length << 8 | u[pos + 2 + k];
            head = 10;
        }
        size_t start = pos + head;
        if (length > size - start) break;
        size_t end = start + length;
        unsigned opcode = b0 & 0x0F;
        if (opcode == 0 || opcode == 1 || opcode == 2) {
            if ((b0 & 0x80) && !c->flen) {
                message(c, p + start, p + end, now);
            } else {
                append(&c->frag, &c->flen, &c->fcap, p + start, length);
                if (b0 & 0x80) {
                    message(c, c->frag, c->frag + c->flen, now);
                    c->flen = 0;
                }
            }
        } else if (opcode == 9) {
            send_frame(c, 10, p + start, length);
        } else if (opcode == 8) {
            unsigned code = length >= 2 ? (unsigned)u[start] << 8 | u[start + 1] : 1005;
            int tail = length >= 2 ? (int)(length - 2) : 0;
            if (tail > 100) tail = 100;
            snprintf(c->close_reason, sizeof c->close_reason, "%u %.*s", code, tail,
                     length >= 2 ? p + start + 2 : "");
            send_frame(c, 8, p + start, length >= 2 ? 2 : 0);
            pos = end;
            conn_close(c);
            return pos;
        }
        pos = end;
    }
    return pos;
}

static void handshake_failed(Conn *c, const char *why) {
    char s[256];
    snprintf(s, sizeof s, "%s: %s", c->url, why);
    add_error(s);
    conn_close(c);
}

static void on_readable(Conn *c) {
    ssize_t n = recv(c->fd, rbuf, READ_SIZE, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0) {
        if (c->state == C_HANDSHAKE) handshake_failed(c, "closed in handshake");
        else conn_close(c);
        return;
    }
    double now = now_wall();
    if (c->state == C_HANDSHAKE) {
        append(&c->buf, &c->len, &c->cap, rbuf, n);
        char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
        if (!end) return;
        char *eol = memmem(c->buf, c->len, "\r\n", 2);
        *eol = 0;
        if (!strstr(c->buf, " 101 ")) {
            handshake_failed(c, c->buf);
            return;
        }
        c->state = C_OPEN;
        size_t rest = c->len - (end + 4 - c->buf);
        memmove(c->buf, end + 4, rest);
        c->len = rest;
        if (!rest) return;
        size_t used = frames_in(c, c->buf, c->len, now);
        if (c->state != C_OPEN) return;
        memmove(c->buf, c->buf + used, c->len - used);
        c->len -= used;
        return;
    }
    if (c->len) { /* a partial frame waits: gather, then parse */
        append(&c->buf, &c->len, &c->cap, rbuf, n);
        size_t used = frames_in(c, c->buf, c->len, now);
        if (c->state != C_OPEN) return;
        memmove(c->buf, c->buf + used, c->len - used);
        c->len -= used;
    } else { /* the usual case, whole frames: parsed where they are */
        size_t used = frames_in(c, rbuf, n, now);
        if (c->state == C_OPEN && used < (size_t)n)
            append(&c->buf, &c->len, &c->cap, rbuf + used, n - used);
    }
}

static void on_writable(Conn *c) {
    if (c->state == C_CONNECTING) {
        int err = 0;
        socklen_t el = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err) {
            handshake_failed(c, strerror(err));
            return;
        }
        c->state = C_HANDSHAKE;
    }
    while (c->req_sent < c->req_len) {
        ssize_t w = send(c->fd, c->request + c->req_sent, c->req_len - c->req_sent, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EAGAIN) return;
            handshake_failed(c, strerror(errno));
            return;
        }
        c->req_sent += w;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)(c - conns) + 1};
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

/* ---- stdin commands ---- */

static char *line;
static size_t line_len, line_cap;
static int stdin_eof;

static void pump(int timeout_ms) {
    struct epoll_event evs[256];
    int n = epoll_wait(epfd, evs, 256, timeout_ms);
    for (int k = 0; k < n; k++) {
        uint32_t id = evs[k].data.u32;
        if (id == 0) {
            char tmp[65536];
            ssize_t r = read(0, tmp, sizeof tmp);
            if (r <= 0) {
                if (r == 0 || errno != EAGAIN) {
                    stdin_eof = 1;
                    epoll_ctl(epfd, EPOLL_CTL_DEL, 0, NULL);
                }
            } else {
                append(&line, &line_len, &line_cap, tmp, r);
            }
            continue;
        }
        Conn *c = &conns[id - 1];
        if (c->state == C_CLOSED) continue;
        if (evs[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
            if (c->state == C_CONNECTING) on_writable(c);
            else on_readable(c);
        } else if (evs[k].events & EPOLLOUT) {
            on_writable(c);
        }
    }
}

static const char *skip_ws(const char *p) {
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++;
    return p;
}

/* A JSON string at p (after whitespace) into out; returns the position after it. */
static const char *json_string(const char *p, char *out, size_t cap) {
    p = skip_ws(p);
    size_t n = 0;
    if (*p != '"') {
        out[0] = 0;
        return p;
    }
    for (p++; *p && *p != '"'; p++) {
        char ch = *p;
        if (ch == '\\') {
            p++;
            ch = *p == 'n' ? '\n' : *p == 't' ? '\t' : *p;
            if (*p == 'u') {
                ch = (char)strtol((char[]){p[1], p[2], p[3], p[4], 0}, NULL, 16);
                p += 4;
            }
        }
        if (n < cap - 1) out[n++] = ch;
    }
    out[n] = 0;
    return *p ? p + 1 : p;
}

/* The value after "key": in the command object, or NULL. */
static const char *key(const char *cmd, const char *name) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\"", name);
    const char *p = strstr(cmd, pat);
    if (!p) return NULL;
    p = skip_ws(p + strlen(pat));
    return *p == ':' ? skip_ws(p + 1) : NULL;
}

static double key_number(const char *cmd, const char *name, double dflt) {
    const char *p = key(cmd, name);
    return p ? strtod(p, NULL) : dflt;
}

static int topic_index(const char *name) {
    for (int k = 0; k < ntopics; k++)
        if (!strcmp(topics[k], name)) return k;
    topics = realloc(topics, sizeof *topics * (ntopics + 1));
    topics[ntopics] = strdup(name);
    return ntopics++;
}

static void json_out(const char *s) {
    putchar('"');
    for (; *s; s++) {
        unsigned char ch = *s;
        if (ch == '"' || ch == '\\') printf("\\%c", ch);
        else if (ch < 0x20) printf("\\u%04x", ch);
        else putchar(ch);
    }
    putchar('"');
}

static void errors_out(void) {
    printf("[");
    int shown = 0;
    for (int k = 0; k < nerrors && shown < MAX_ERRORS; k++, shown++) {
        if (shown) printf(", ");
        json_out(errors[k]);
    }
    printf("]");
}

static int start_connect(Conn *c, const char *origin) {
    /* ws://host:port/path */
    const char *u = c->url, *hp = strstr(u, "://");
    hp = hp ? hp + 3 : u;
    const char *slash = strchr(hp, '/');
    char netloc[256], host[256], port[16] = "80";
    size_t nl = slash ? (size_t)(slash - hp) : strlen(hp);
    snprintf(netloc, sizeof netloc, "%.*s", (int)nl, hp);
    snprintf(host, sizeof host, "%s", netloc);
    char *colon = strrchr(host, ':');
    if (colon) {
        *colon = 0;
        snprintf(port, sizeof port, "%s", colon + 1);
    }
    const char *path = slash ? slash : "/";
    unsigned char raw[16];
    if (getrandom(raw, 16, 0) != 16)
        for (int k = 0; k < 16; k++) raw[k] = random();
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char wskey[25];
    int o = 0;
    for (int k = 0; k < 16; k += 3) {
        uint32_t v = raw[k] << 16 | (k + 1 < 16 ? raw[k + 1] << 8 : 0) | (k + 2 < 16 ? raw[k + 2] : 0);
        wskey[o++] = b64[v >> 18 & 63];
        wskey[o++] = b64[v >> 12 & 63];
        wskey[o++] = k + 1 < 16 ? b64[v >> 6 & 63] : '=';
        wskey[o++] = k + 2 < 16 ? b64[v & 63] : '=';
    }
    wskey[o] = 0;
    c->req_len = snprintf(c->request, sizeof c->request,
                          "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                          "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                          "Sec-WebSocket-Version: 13\r\nOrigin: %s\r\n\r\n",
                          path, netloc, wskey, origin);
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *ai;
    if (getaddrinfo(host, port, &hints, &ai)) return -1;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int r = connect(c->fd, ai->ai_addr, ai->ai_addrlen);
    freeaddrinfo(ai);
    if (r < 0 && errno != EINPROGRESS) {
        close(c->fd);
        return -1;
    }
    c->state = C_CONNECTING;
    c->started = now_mono();
    struct epoll_event ev = {.events = EPOLLOUT, .data.u32 = (uint32_t)(c - conns) + 1};
    epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
    return 0;
}

static void cmd_connect(const char *cmd) {
    char origin[256] = "";
    const char *op = key(cmd, "origin");
    if (op) json_string(op, origin, sizeof origin);
    int limit = (int)key_number(cmd, "concurrency", CONCURRENCY);
    const char *p = key(cmd, "urls");
    int first = nconns;
    if (p && *p == '[') {
        p = skip_ws(p + 1);
        while (*p == '[') {
            char url[512], topic[256];
            p = json_string(p + 1, url, sizeof url);
            p = skip_ws(p);
            if (*p == ',') p = json_string(p + 1, topic, sizeof topic);
            while (*p && *p != ']') p++;
            p = skip_ws(p + 1);
            if (*p == ',') p = skip_ws(p + 1);
            if (nconns == capconns) {
                capconns = capconns ? capconns * 2 : 64;
                conns = realloc(conns, sizeof *conns * capconns);
            }
            Conn *c = &conns[nconns++];
            memset(c, 0, sizeof *c);
            c->state = -1; /* not started */
            c->fd = -1;
            c->last = -1;
            c->topic = topic_index(topic);
            snprintf(c->url, sizeof c->url, "%s", url);
        }
    }
    int next = first, pending = 0, opened = 0;
    while (1) {
        pending = 0;
        for (int k = first; k < next; k++)
            if (conns[k].state == C_CONNECTING || conns[k].state == C_HANDSHAKE) {
                if (now_mono() - conns[k].started > 30) handshake_failed(&conns[k], "timed out");
                else pending++;
            }
        while (pending < limit && next < nconns) {
            if (start_connect(&conns[next], origin) < 0) {
                handshake_failed(&conns[next], strerror(errno));
                conns[next].state = C_CLOSED;
            } else {
                pending++;
            }
            next++;
        }
        if (!pending && next == nconns) break;
        pump(50);
    }
    /* The failed ones are dropped, as client.py keeps only the opened connections. */
    int kept = first;
    for (int k = first; k < nconns; k++)
        if (conns[k].state == C_OPEN) {
            if (kept != k) {
                conns[kept] = conns[k];
                struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)kept + 1};
                epoll_ctl(epfd, EPOLL_CTL_MOD, conns[kept].fd, &ev);
            }
            kept++;
            opened++;
        }
    nconns = kept;
    printf("{\"connected\": %d, \"errors\": ", nconns);
    errors_out();
    printf("}\n");
    (void)opened;
}

static int count_ready(void) {
    int n = 0;
    for (int k = 0; k < nconns; k++) n += conns[k].last >= 0;
    return n;
}

static void cmd_ready(const char *cmd) {
    double deadline = now_mono() + key_number(cmd, "timeout", 1.0);
    while (now_mono() < deadline && count_ready() < nconns) pump(20);
    printf("{\"ready\": %d, \"of\": %d}\n", count_ready(), nconns);
}

static void cmd_mark(const char *cmd) {
    double quiet = key_number(cmd, "quiet", 0.3);
    double deadline = now_mono() + key_number(cmd, "timeout", 30.0);
    while (now_mono() < deadline && now_wall() - last_recv < quiet) pump((int)(quiet * 250));
    reset_stats();
    for (int k = 0; k < nconns; k++) {
        Conn *c = &conns[k];
        c->received = c->missing = c->gaps = 0;
        c->fresh = 1;
    }
    printf("{\"marked\": true}\n");
}

static void cmd_collect(const char *cmd) {
    long long *expected = calloc(ntopics + 1, sizeof *expected);
    const char *p = key(cmd, "expected");
    if (p && *p == '{') {
        p = skip_ws(p + 1);
        while (*p == '"') {
            char name[256];
            p = skip_ws(json_string(p, name, sizeof name));
            if (*p == ':') p++;
            char *e;
            long long v = strtoll(p, &e, 10);
            p = skip_ws(e);
            for (int k = 0; k < ntopics; k++)
                if (!strcmp(topics[k], name)) expected[k] = v;
            if (*p == ',') p = skip_ws(p + 1);
        }
    }
    double quiet = key_number(cmd, "quiet", 1.0);
    double deadline = now_mono() + key_number(cmd, "timeout", 5.0);
    long long want = 0, got = 0;
    for (int k = 0; k < nconns; k++) want += expected[conns[k].topic];
    while (now_mono() < deadline) {
        double until = now_mono() + 0.05;
        while (now_mono() < until) pump((int)((until - now_mono()) * 1000) + 1);
        got = 0;
        for (int k = 0; k < nconns; k++) got += conns[k].received;
        if (got >= want) break;
        if (last_recv && now_wall() - last_recv > quiet) break;
    }
    long long received = 0, lost = 0, missing = 0, gaps = 0;
    for (int k = 0; k < nconns; k++) {
        Conn *c = &conns[k];
        received += c->received;
        long long short_by = expected[c->topic] - c->received;
        lost += short_by > 0 ? short_by : 0;
        missing += c->missing;
        gaps += c->gaps;
    }
    free(expected);
    printf("{\"received\": %lld, \"lost\": %lld, \"missing\": %lld, \"gaps\": %lld, "
           "\"frames\": %lld, \"first_recv\": %.6f, \"last_recv\": %.6f, \"max_s\": %.9g, "
           "\"hist\": [",
           received, lost, missing, gaps, frames, first_recv, last_recv, max_s);
    for (int k = 0; k < BUCKETS; k++) printf(k ? ", %.17g" : "%.17g", hist[k]);
    printf("], \"closed\": [");
    int shown = 0;
    for (int k = 0; k < nconns && shown < 5; k++)
        if (conns[k].close_reason[0]) {
            if (shown++) printf(", ");
            json_out(conns[k].close_reason);
        }
    printf("], \"errors\": ");
    errors_out();
    printf("}\n");
}

static void close_all(void) {
    for (int k = 0; k < nconns; k++) {
        send_frame(&conns[k], 8, "\x03\xe8", 2);
        conns[k].close_wanted = 1;
    }
    double deadline = now_mono() + 2;
    while (now_mono() < deadline) {
        int open = 0;
        for (int k = 0; k < nconns; k++) open += conns[k].state != C_CLOSED;
        if (!open) break;
        pump(20);
    }
    for (int k = 0; k < nconns; k++) conn_close(&conns[k]);
    nconns = 0;
}

int main(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    srandom((unsigned)(now_wall() * 1e6) ^ (unsigned)getpid());
    log_ratio = log(BUCKET_RATIO);
    for (int k = 0; k <= BUCKETS; k++) edges[k] = BUCKET_FIRST_S * pow(BUCKET_RATIO, k);
    reset_stats();
    rbuf = malloc(READ_SIZE);
    epfd = epoll_create1(0);
    fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 0};
    epoll_ctl(epfd, EPOLL_CTL_ADD, 0, &ev);
    setvbuf(stdout, NULL, _IOFBF, 1 << 16);
    while (1) {
        char *nl;
        while ((nl = line_len ? memchr(line, '\n', line_len) : NULL)) {
            *nl = 0;
            char name[32];
            const char *cp = key(line, "cmd");
            json_string(cp ? cp : "", name, sizeof name);
            if (!strcmp(name, "quit")) goto done;
            if (!strcmp(name, "connect")) cmd_connect(line);
            else if (!strcmp(name, "ready")) cmd_ready(line);
            else if (!strcmp(name, "mark")) cmd_mark(line);
            else if (!strcmp(name, "collect")) cmd_collect(line);
            else if (!strcmp(name, "close")) {
                close_all();
                printf("{\"closed\": true}\n");
            } else {
                fprintf(stderr, "wsclient: unknown command %s\n", name);
                return 2;
            }
            fflush(stdout);
            size_t rest = line_len - (nl + 1 - line);
            memmove(line, nl + 1, rest);
            line_len = rest;
        }
        if (stdin_eof) break;
        pump(-1);
    }
done:
    close_all();
    return 0;
}
