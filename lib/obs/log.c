/*
 * log.c - structured logs: every call becomes one JSON object on one line, so that a log
 * shipper can parse worker output without guessing. The line is built in a buffer (bounded,
 * marked when cut) and written with one fwrite + fflush under a mutex, so lines from different
 * threads never interleave. Any thread.
 */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "clock.h"

#define LINE_MAX_BYTES 65536 /* a longer line is cut and says "truncated":true */
#define LINE_RESERVE 32      /* always free for the closing '"', truncation mark and "}\n" */
#define WORKER_MAX 128

/* Configuration: written by pc_log_init, read by pc_log; the mutex also orders the writes. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static FILE *log_out; /* NULL = stderr */
static char log_worker[WORKER_MAX];
static atomic_int log_min_level = PC_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

typedef struct line {
    char *buf;
    size_t len, cap;
    bool truncated;
    char small[1024]; /* most lines fit: no allocation */
} line_t;

static void line_init(line_t *ln)
{
    ln->buf = ln->small;
    ln->len = 0;
    ln->cap = sizeof(ln->small);
    ln->truncated = false;
}

static void line_free(line_t *ln)
{
    if (ln->buf != ln->small)
        free(ln->buf);
}

/* line_room makes room for n more bytes plus the reserve; false (and truncated) when the line
 * would pass LINE_MAX_BYTES or memory runs out. */
static bool line_room(line_t *ln, size_t n)
{
    if (ln->truncated)
        return false;
    if (ln->len + n + LINE_RESERVE <= ln->cap)
        return true;
    size_t cap = ln->cap;
    while (cap < ln->len + n + LINE_RESERVE && cap < LINE_MAX_BYTES)
        cap = cap * 2 > LINE_MAX_BYTES ? LINE_MAX_BYTES : cap * 2;
    if (cap < ln->len + n + LINE_RESERVE)
        goto out_truncated;
    char *bigger = ln->buf == ln->small ? malloc(cap) : realloc(ln->buf, cap);
    if (bigger == NULL)
        goto out_truncated;
    if (ln->buf == ln->small)
        memcpy(bigger, ln->small, ln->len);
    ln->buf = bigger;
    ln->cap = cap;
    return true;
out_truncated:
    ln->truncated = true;
    return false;
}

static bool put(line_t *ln, const char *s, size_t n)
{
    if (!line_room(ln, n))
        return false;
    memcpy(ln->buf + ln->len, s, n);
    ln->len += n;
    return true;
}

/* put_reserved writes closing text into the reserve that line_room always keeps free. */
static void put_reserved(line_t *ln, const char *s)
{
    size_t n = strlen(s);
    if (ln->len + n <= ln->cap) {
        memcpy(ln->buf + ln->len, s, n);
        ln->len += n;
    }
}

/* utf8_len returns the length of the well-formed UTF-8 sequence at p (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF), or 0. Stops at a NUL. */
static size_t utf8_len(const unsigned char *p)
{
    unsigned char c = p[0], lo = 0x80, hi = 0xbf;
    size_t n;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        lo = c == 0xe0 ? 0xa0 : lo;
        hi = c == 0xed ? 0x9f : hi;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        lo = c == 0xf0 ? 0x90 : lo;
        hi = c == 0xf4 ? 0x8f : hi;
    } else {
        return 0;
    }
    if (p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    return n;
}

/* put_escaped writes s as the inside of a JSON string, one whole escape or character at a
 * time so that a cut never splits one; bad UTF-8 bytes become U+FFFD. */
static bool put_escaped(line_t *ln, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    while (*p != '\0') {
        char esc[8] = "\\u00";
        const char *out = esc;
        size_t n = 2, used = 1;
        if (*p == '"' || *p == '\\') {
            esc[1] = (char)*p;
        } else if (*p == '\n' || *p == '\r' || *p == '\t') {
            esc[1] = *p == '\n' ? 'n' : *p == '\r' ? 'r' : 't';
        } else if (*p < 0x20) {
            esc[4] = hex[*p >> 4];
            esc[5] = hex[*p & 0xf];
            n = 6;
        } else if (*p < 0x80) {
            out = (const char *)p;
            n = 1;
        } else if ((used = utf8_len(p)) > 0) {
            out = (const char *)p;
            n = used;
        } else {
            out = "\\ufffd";
            n = 6;
            used = 1;
        }
        if (!put(ln, out, n))
            return false;
        p += used;
    }
    return true;
}

/* put_field appends ,"key":"value" (value NULL: null). A key that does not fit drops the
 * field; a value that does not fit is cut and the string still closed. */
static void put_field(line_t *ln, const char *key, const char *value)
{
    size_t mark = ln->len;
    if (!put(ln, ",\"", 2) || !put_escaped(ln, key) || !put(ln, "\":", 2)) {
        ln->len = mark;
        return;
    }
    if (value == NULL) {
        if (!put(ln, "null", 4))
            ln->len = mark;
        return;
    }
    if (!put(ln, "\"", 1)) {
        ln->len = mark;
        return;
    }
    put_escaped(ln, value);
    put_reserved(ln, "\"");
}

/* format_ts writes the current UTC time as 2026-11-24T10:00:00.123Z. */
static void format_ts(char *out, size_t size)
{
    int64_t now = pc_now_ms();
    time_t secs = (time_t)(now / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = strftime(out, size, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, size - n, ".%03dZ", (int)(now % 1000));
}

static const char *level_name(pc_log_level_t level)
{
    if ((int)level < 0)
        return level_names[0];
    if ((size_t)level >= sizeof(level_names) / sizeof(level_names[0]))
        return level_names[PC_LOG_ERROR];
    return level_names[level];
}

/* line_build writes the whole line; the caller holds log_lock (log_worker is read). */
static void line_build(line_t *ln, pc_log_level_t level, const char *event, const char *msg,
                       va_list ap)
{
    char ts[48];
    format_ts(ts, sizeof(ts));
    put(ln, "{\"ts\":\"", 7);
    put(ln, ts, strlen(ts));
    put(ln, "\"", 1);
    put_field(ln, "level", level_name(level));
    put_field(ln, "event", event != NULL ? event : "");
    if (log_worker[0] != '\0')
        put_field(ln, "worker", log_worker);
    put_field(ln, "msg", msg != NULL ? msg : "");
    for (;;) {
        const char *key = va_arg(ap, const char *);
        if (key == NULL)
            break;
        const char *value = va_arg(ap, const char *);
        put_field(ln, key, value);
    }
    if (ln->truncated)
        put_reserved(ln, ",\"truncated\":true");
    put_reserved(ln, "}\n");
}

void pc_log_init(const char *worker_id, pc_log_level_t min_level, FILE *out)
{
    pthread_mutex_lock(&log_lock);
    snprintf(log_worker, sizeof(log_worker), "%s", worker_id != NULL ? worker_id : "");
    log_out = out;
    pthread_mutex_unlock(&log_lock);
    atomic_store(&log_min_level, (int)min_level);
}

int pc_log_parse_level(const char *text)
{
    if (text == NULL)
        return -1;
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
        if (strcasecmp(text, level_names[i]) == 0)
            return (int)i;
    if (strcasecmp(text, "warning") == 0)
        return PC_LOG_WARN;
    return -1;
}

void pc_log(pc_log_level_t level, const char *event, const char *msg, ...)
{
    line_t ln;
    va_list ap;
    if ((int)level < atomic_load(&log_min_level))
        return;
    line_init(&ln);
    va_start(ap, msg);
    /* Built under the lock too: it reads the worker id, and lines are short. */
    pthread_mutex_lock(&log_lock);
    line_build(&ln, level, event, msg, ap);
    FILE *out = log_out != NULL ? log_out : stderr;
    fwrite(ln.buf, 1, ln.len, out);
    fflush(out);
    pthread_mutex_unlock(&log_lock);
    va_end(ap);
    line_free(&ln);
}
