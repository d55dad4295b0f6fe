/*
 * metrics.c - a registry of Prometheus series (name + label set) and its text rendering
 * (format 0.0.4). Exists so that a worker can be scraped without a client library.
 * Updates are relaxed atomics, callable from any thread (loop and pool threads); registration
 * and rendering take the registry mutex. Series live as long as the registry, so the handles
 * given out stay valid until pc_metrics_free.
 */
#include "metrics.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum kind { KIND_COUNTER, KIND_GAUGE, KIND_HISTOGRAM } kind_t;

struct pc_counter {
    _Atomic uint64_t value;
};

/* A double kept as its bit pattern: atomic uint64_t is lock-free everywhere we run. */
struct pc_gauge {
    _Atomic uint64_t bits;
};

struct pc_histogram {
    size_t nbounds;
    double *bounds;
    _Atomic uint64_t *buckets; /* nbounds + 1, not cumulative; the last one is +Inf */
    _Atomic uint64_t sum_bits;
};

typedef struct series series_t;

struct series {
    series_t *next;
    char *name;
    char *help;
    char *labels;
    kind_t kind;
    union {
        pc_counter_t counter;
        pc_gauge_t gauge;
        pc_histogram_t histogram;
    } u;
};

struct pc_metrics {
    pthread_mutex_t lock;
    series_t *head, *tail; /* registration order */
};

const double pc_metrics_latency_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                            0.5,   1,      2.5,   5,    10,    30,   60};
const size_t pc_metrics_latency_bounds_count =
    sizeof(pc_metrics_latency_bounds) / sizeof(pc_metrics_latency_bounds[0]);

static uint64_t double_bits(double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof(bits));
    return bits;
}

static double bits_double(uint64_t bits)
{
    double v;
    memcpy(&v, &bits, sizeof(v));
    return v;
}

/* load reads v; C11's atomic_load takes a non-const pointer although it does not write. */
static uint64_t load(const _Atomic uint64_t *v)
{
    return atomic_load_explicit((_Atomic uint64_t *)(uintptr_t)v, memory_order_relaxed);
}

/* ---- registry ---------------------------------------------------------------------------- */

pc_metrics_t *pc_metrics_new(void)
{
    pc_metrics_t *m = calloc(1, sizeof(*m));
    if (m == NULL)
        goto out;
    if (pthread_mutex_init(&m->lock, NULL) != 0)
        goto out_free_m;
    goto out;
out_free_m:
    free(m);
    m = NULL;
out:
    return m;
}

static void series_free(series_t *s)
{
    if (s == NULL)
        return;
    if (s->kind == KIND_HISTOGRAM) {
        free(s->u.histogram.bounds);
        free(s->u.histogram.buckets);
    }
    free(s->name);
    free(s->help);
    free(s->labels);
    free(s);
}

void pc_metrics_free(pc_metrics_t *m)
{
    if (m == NULL)
        return;
    series_t *next;
    for (series_t *s = m->head; s != NULL; s = next) {
        next = s->next;
        series_free(s);
    }
    pthread_mutex_destroy(&m->lock);
    free(m);
}

static bool valid_name(const char *name)
{
    if (name == NULL || name[0] == '\0' || (name[0] >= '0' && name[0] <= '9'))
        return false;
    for (const char *p = name; *p != '\0'; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == ':'))
            return false;
    }
    return true;
}

static bool valid_bounds(const double *bounds, size_t count)
{
    if (count > 0 && bounds == NULL)
        return false;
    for (size_t i = 0; i < count; i++)
        if (!isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1]))
            return false;
    return true;
}

/* find returns the series named name: with these labels (*same), or any (for its kind). */
static series_t *find(pc_metrics_t *m, const char *name, const char *labels, series_t **any)
{
    *any = NULL;
    for (series_t *s = m->head; s != NULL; s = s->next) {
        if (strcmp(s->name, name) != 0)
            continue;
        *any = s;
        if (strcmp(s->labels, labels) == 0)
            return s;
    }
    return NULL;
}

static series_t *series_new(const char *name, const char *help, const char *labels, kind_t kind)
{
    series_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        goto out;
    s->kind = kind;
    s->name = strdup(name);
    s->help = strdup(help != NULL ? help : "");
    s->labels = strdup(labels);
    if (s->name == NULL || s->help == NULL || s->labels == NULL)
        goto out_free_series;
    goto out;
out_free_series:
    series_free(s);
    s = NULL;
out:
    return s;
}

static bool histogram_init(pc_histogram_t *h, const double *bounds, size_t count)
{
    h->nbounds = count;
    h->bounds = malloc((count > 0 ? count : 1) * sizeof(*h->bounds));
    h->buckets = calloc(count + 1, sizeof(*h->buckets));
    if (h->bounds == NULL || h->buckets == NULL)
        return false;
    if (count > 0)
        memcpy(h->bounds, bounds, count * sizeof(*bounds));
    for (size_t i = 0; i <= count; i++)
        atomic_init(&h->buckets[i], 0);
    atomic_init(&h->sum_bits, double_bits(0.0));
    return true;
}

/* reg finds or adds the series; NULL for a bad name, a name taken by another kind, or OOM. */
static series_t *reg(pc_metrics_t *m, const char *name, const char *help, const char *labels,
                     kind_t kind, const double *bounds, size_t count)
{
    series_t *s = NULL, *any = NULL;
    if (m == NULL || !valid_name(name))
        return NULL;
    if (labels == NULL)
        labels = "";
    pthread_mutex_lock(&m->lock);
    s = find(m, name, labels, &any);
    if (any != NULL && any->kind != kind) {
        s = NULL;
        goto out_unlock;
    }
    if (s != NULL)
        goto out_unlock;
    s = series_new(name, help, labels, kind);
    if (s == NULL)
        goto out_unlock;
    if (kind == KIND_HISTOGRAM && !histogram_init(&s->u.histogram, bounds, count)) {
        series_free(s);
        s = NULL;
        goto out_unlock;
    }
    if (m->tail != NULL)
        m->tail->next = s;
    else
        m->head = s;
    m->tail = s;
out_unlock:
    pthread_mutex_unlock(&m->lock);
    return s;
}

pc_counter_t *pc_metrics_counter(pc_metrics_t *m, const char *name, const char *help,
                                 const char *labels)
{
    series_t *s = reg(m, name, help, labels, KIND_COUNTER, NULL, 0);
    return s != NULL ? &s->u.counter : NULL;
}

pc_gauge_t *pc_metrics_gauge(pc_metrics_t *m, const char *name, const char *help,
                             const char *labels)
{
    series_t *s = reg(m, name, help, labels, KIND_GAUGE, NULL, 0);
    return s != NULL ? &s->u.gauge : NULL;
}

pc_histogram_t *pc_metrics_histogram(pc_metrics_t *m, const char *name, const char *help,
                                     const char *labels, const double *bounds, size_t count)
{
    if (!valid_bounds(bounds, count))
        return NULL;
    series_t *s = reg(m, name, help, labels, KIND_HISTOGRAM, bounds, count);
    return s != NULL ? &s->u.histogram : NULL;
}

/* ---- updates (any thread) ---------------------------------------------------------------- */

void pc_counter_inc(pc_counter_t *c)
{
    pc_counter_add(c, 1);
}

void pc_counter_add(pc_counter_t *c, uint64_t n)
{
    if (c != NULL)
        atomic_fetch_add_explicit(&c->value, n, memory_order_relaxed);
}

uint64_t pc_counter_get(const pc_counter_t *c)
{
    return c != NULL ? load(&c->value) : 0;
}

void pc_gauge_set(pc_gauge_t *g, double v)
{
    if (g != NULL)
        atomic_store_explicit(&g->bits, double_bits(v), memory_order_relaxed);
}

/* add_double adds v to the double held in bits, retrying while another thread got there. */
static void add_double(_Atomic uint64_t *bits, double v)
{
    uint64_t old = atomic_load_explicit(bits, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(bits, &old, double_bits(bits_double(old) + v),
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

void pc_gauge_add(pc_gauge_t *g, double delta)
{
    if (g != NULL)
        add_double(&g->bits, delta);
}

double pc_gauge_get(const pc_gauge_t *g)
{
    return g != NULL ? bits_double(load(&g->bits)) : 0;
}

void pc_histogram_observe(pc_histogram_t *h, double v)
{
    if (h == NULL)
        return;
    size_t i = 0;
    while (i < h->nbounds && !(v <= h->bounds[i])) /* NaN lands in +Inf */
        i++;
    atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
    add_double(&h->sum_bits, v);
}

/* ---- rendering --------------------------------------------------------------------------- */

typedef struct text {
    char *buf;
    size_t len, cap;
    bool failed;
} text_t;

static void text_reserve(text_t *t, size_t more)
{
    if (t->failed || t->len + more + 1 <= t->cap)
        return;
    size_t cap = t->cap > 0 ? t->cap : 1024;
    while (cap < t->len + more + 1)
        cap *= 2;
    char *bigger = realloc(t->buf, cap);
    if (bigger == NULL) {
        t->failed = true;
        return;
    }
    t->buf = bigger;
    t->cap = cap;
}

static void text_put(text_t *t, const char *s, size_t n)
{
    text_reserve(t, n);
    if (t->failed)
        return;
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    t->buf[t->len] = '\0';
}

static void text_str(text_t *t, const char *s)
{
    text_put(t, s, strlen(s));
}

static void text_fmt(text_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void text_fmt(text_t *t, const char *fmt, ...)
{
    char small[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) {
        t->failed = true;
        return;
    }
    if ((size_t)n < sizeof(small)) {
        text_put(t, small, (size_t)n);
        return;
    }
    text_reserve(t, (size_t)n);
    if (t->failed)
        return;
    va_start(ap, fmt);
    vsnprintf(t->buf + t->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    t->len += (size_t)n;
}

/* format_double writes the shortest text that reads back as v ("0.005", not
 * "0.0050000000000000001"; "60", not "6e+01"), or Prometheus's NaN/+Inf/-Inf. */
static void format_double(char *out, size_t size, double v)
{
    if (isnan(v)) {
        snprintf(out, size, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(out, size, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    if (v == floor(v) && fabs(v) < 1e15) { /* integers read as integers: "10", not "1e+01" */
        snprintf(out, size, "%.0f", v);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(out, size, "%.*g", prec, v);
        if (strtod(out, NULL) == v)
            return;
    }
}

static void text_double(text_t *t, double v)
{
    char num[40];
    format_double(num, sizeof(num), v);
    text_str(t, num);
}

/* text_help writes help with backslash and newline escaped, as the format asks. */
static void text_help(text_t *t, const char *help)
{
    for (const char *p = help; *p != '\0'; p++) {
        if (*p == '\\')
            text_str(t, "\\\\");
        else if (*p == '\n')
            text_str(t, "\\n");
        else
            text_put(t, p, 1);
    }
}

/* text_series_name writes name+suffix and the label block, with extra (le="...") appended. */
static void text_series_name(text_t *t, const series_t *s, const char *suffix, const char *extra)
{
    text_str(t, s->name);
    text_str(t, suffix);
    bool labels = s->labels[0] != '\0';
    if (!labels && extra == NULL)
        return;
    text_str(t, "{");
    text_str(t, s->labels);
    if (labels && extra != NULL)
        text_str(t, ",");
    if (extra != NULL)
        text_str(t, extra);
    text_str(t, "}");
}

/* render_histogram writes cumulative buckets; _count is the +Inf bucket, so the two always
 * agree even while other threads observe. */
static void render_histogram(text_t *t, const series_t *s)
{
    const pc_histogram_t *h = &s->u.histogram;
    uint64_t total = 0;
    char le[64], num[40];
    for (size_t i = 0; i <= h->nbounds; i++) {
        total += load(&h->buckets[i]);
        if (i < h->nbounds)
            format_double(num, sizeof(num), h->bounds[i]);
        else
            snprintf(num, sizeof(num), "+Inf");
        snprintf(le, sizeof(le), "le=\"%s\"", num);
        text_series_name(t, s, "_bucket", le);
        text_fmt(t, " %" PRIu64 "\n", total);
    }
    text_series_name(t, s, "_sum", NULL);
    text_str(t, " ");
    text_double(t, bits_double(load(&h->sum_bits)));
    text_str(t, "\n");
    text_series_name(t, s, "_count", NULL);
    text_fmt(t, " %" PRIu64 "\n", total);
}

static void render_series(text_t *t, const series_t *s)
{
    switch (s->kind) {
    case KIND_COUNTER:
        text_series_name(t, s, "", NULL);
        text_fmt(t, " %" PRIu64 "\n", load(&s->u.counter.value));
        break;
    case KIND_GAUGE:
        text_series_name(t, s, "", NULL);
        text_str(t, " ");
        text_double(t, bits_double(load(&s->u.gauge.bits)));
        text_str(t, "\n");
        break;
    case KIND_HISTOGRAM:
        render_histogram(t, s);
        break;
    }
}

static const char *kind_name(kind_t kind)
{
    return kind == KIND_COUNTER ? "counter" : kind == KIND_GAUGE ? "gauge" : "histogram";
}

/* render_family writes HELP and TYPE of first's name, then every series of that name. */
static void render_family(text_t *t, const series_t *first)
{
    text_fmt(t, "# HELP %s ", first->name);
    text_help(t, first->help);
    text_fmt(t, "\n# TYPE %s %s\n", first->name, kind_name(first->kind));
    for (const series_t *s = first; s != NULL; s = s->next)
        if (strcmp(s->name, first->name) == 0)
            render_series(t, s);
}

/* seen_before: quadratic in the number of series, which stays in the hundreds. */
static bool seen_before(const pc_metrics_t *m, const series_t *s)
{
    for (const series_t *p = m->head; p != s; p = p->next)
        if (strcmp(p->name, s->name) == 0)
            return true;
    return false;
}

char *pc_metrics_render(pc_metrics_t *m, size_t *len)
{
    text_t t = {0};
    *len = 0;
    text_reserve(&t, 0); /* an empty registry still renders as "" */
    pthread_mutex_lock(&m->lock);
    for (const series_t *s = m->head; s != NULL; s = s->next)
        if (!seen_before(m, s))
            render_family(&t, s);
    pthread_mutex_unlock(&m->lock);
    if (t.failed) {
        free(t.buf);
        return NULL;
    }
    t.buf[t.len] = '\0';
    *len = t.len;
    return t.buf;
}
