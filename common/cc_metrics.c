/* cc_metrics: Prometheus counters, gauges and histograms; see cc_metrics.h. */
#include "cc_metrics.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum metric_type { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM };

struct cc_counter {
    _Atomic uint64_t value;
};

/* Doubles are kept as their bit pattern so that updates are plain 64-bit atomics. */
struct cc_gauge {
    _Atomic uint64_t bits;
};

struct cc_histogram {
    double *bounds;
    size_t nbounds;
    _Atomic uint64_t *buckets; /* nbounds + 1 non-cumulative counts; the last is +Inf */
    _Atomic uint64_t sum_bits;
};

/* One time series: a family member with its own labels. */
struct series {
    char *labels; /* NULL when none */
    union {
        struct cc_counter counter;
        struct cc_gauge gauge;
        struct cc_histogram histogram;
    } u;
};

struct family {
    char *name;
    char *help;
    enum metric_type type;
    struct series **series;
    size_t nseries;
};

struct cc_metrics {
    pthread_mutex_t lock; /* guards the families and series arrays, not the values */
    struct family **families;
    size_t nfamilies;
};

static uint64_t double_bits(double v)
{
    uint64_t b;

    memcpy(&b, &v, sizeof(b));
    return b;
}

static double bits_double(uint64_t b)
{
    double v;

    memcpy(&v, &b, sizeof(v));
    return v;
}

static void atomic_add_double(_Atomic uint64_t *bits, double delta)
{
    uint64_t old = atomic_load_explicit(bits, memory_order_relaxed);

    while (!atomic_compare_exchange_weak_explicit(bits, &old, double_bits(bits_double(old) + delta),
                                                  memory_order_relaxed, memory_order_relaxed)) {
    }
}

static bool name_valid(const char *s)
{
    static const char first[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_:";
    static const char rest[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_:0123456789";

    return s && *s && strchr(first, *s) && strspn(s, rest) == strlen(s);
}

/* Checks `name="value"(,name="value")*` with \\, \" and \n escapes; `le` is reserved for
 * histograms. NULL and "" mean no labels. */
static bool labels_valid(const char *s, bool histogram)
{
    static const char first[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_";
    static const char rest[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789";

    if (!s || !*s)
        return true;
    for (const char *p = s;; p++) {
        if (!*p || !strchr(first, *p))
            return false;
        size_t n = strspn(p, rest);
        if (histogram && n == 2 && strncmp(p, "le", 2) == 0)
            return false;
        p += n;
        if (p[0] != '=' || p[1] != '"')
            return false;
        for (p += 2; *p != '"'; p++) {
            if (*p == '\0' || *p == '\n')
                return false;
            if (*p == '\\' && p[1] != '\\' && p[1] != '"' && p[1] != 'n')
                return false;
            if (*p == '\\')
                p++;
        }
        if (p[1] == '\0')
            return true;
        if (p[1] != ',')
            return false;
        p++;
    }
}

cc_metrics *cc_metrics_new(void)
{
    cc_metrics *m = calloc(1, sizeof(*m));

    if (m)
        pthread_mutex_init(&m->lock, NULL);
    return m;
}

static void series_free(struct series *s, enum metric_type type)
{
    if (type == METRIC_HISTOGRAM) {
        free(s->u.histogram.bounds);
        free(s->u.histogram.buckets);
    }
    free(s->labels);
    free(s);
}

static void family_free(struct family *f)
{
    for (size_t i = 0; i < f->nseries; i++)
        series_free(f->series[i], f->type);
    free(f->series);
    free(f->name);
    free(f->help);
    free(f);
}

void cc_metrics_free(cc_metrics *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->nfamilies; i++)
        family_free(m->families[i]);
    free(m->families);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

/* Finds or creates the family `name` (under the lock); NULL on a type clash or ENOMEM. */
static struct family *family_get(cc_metrics *m, const char *name, const char *help,
                                 enum metric_type type)
{
    struct family *f, **grown;

    for (size_t i = 0; i < m->nfamilies; i++) {
        if (strcmp(m->families[i]->name, name) == 0)
            return m->families[i]->type == type ? m->families[i] : NULL;
    }
    grown = realloc(m->families, (m->nfamilies + 1) * sizeof(*grown));
    if (!grown)
        return NULL;
    m->families = grown;
    f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    f->name = strdup(name);
    f->help = strdup(help ? help : "");
    f->type = type;
    if (!f->name || !f->help) {
        family_free(f);
        return NULL;
    }
    m->families[m->nfamilies++] = f;
    return f;
}

static struct series *series_find(struct family *f, const char *labels)
{
    const char *want = labels ? labels : "";

    for (size_t i = 0; i < f->nseries; i++) {
        const char *have = f->series[i]->labels ? f->series[i]->labels : "";
        if (strcmp(have, want) == 0)
            return f->series[i];
    }
    return NULL;
}

/* Appends a zeroed series to f (under the lock); NULL on ENOMEM. */
static struct series *series_add(struct family *f, const char *labels)
{
    struct series *s, **grown;

    grown = realloc(f->series, (f->nseries + 1) * sizeof(*grown));
    if (!grown)
        return NULL;
    f->series = grown;
    s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    if (labels && *labels) {
        s->labels = strdup(labels);
        if (!s->labels) {
            free(s);
            return NULL;
        }
    }
    f->series[f->nseries++] = s;
    return s;
}

/* The shared path of the three registration functions, for counters and gauges. */
static struct series *register_scalar(cc_metrics *m, const char *name, const char *help,
                                      const char *labels, enum metric_type type)
{
    struct family *f;
    struct series *s = NULL;

    if (!m || !name_valid(name) || !labels_valid(labels, false))
        return NULL;
    pthread_mutex_lock(&m->lock);
    f = family_get(m, name, help, type);
    if (f) {
        s = series_find(f, labels);
        if (!s)
            s = series_add(f, labels);
    }
    pthread_mutex_unlock(&m->lock);
    return s;
}

struct cc_counter *cc_metrics_counter(cc_metrics *m, const char *name, const char *help,
                                      const char *labels)
{
    struct series *s = register_scalar(m, name, help, labels, METRIC_COUNTER);

    return s ? &s->u.counter : NULL;
}

struct cc_gauge *cc_metrics_gauge(cc_metrics *m, const char *name, const char *help,
                                  const char *labels)
{
    struct series *s = register_scalar(m, name, help, labels, METRIC_GAUGE);

    return s ? &s->u.gauge : NULL;
}

static bool bounds_valid(const double *bounds, size_t n)
{
    if (!bounds || n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1]))
            return false;
    }
    return true;
}

static int histogram_init(struct cc_histogram *h, const double *bounds, size_t n)
{
    h->bounds = malloc(n * sizeof(*h->bounds));
    h->buckets = calloc(n + 1, sizeof(*h->buckets));
    if (!h->bounds || !h->buckets)
        return -1;
    memcpy(h->bounds, bounds, n * sizeof(*bounds));
    h->nbounds = n;
    return 0;
}

struct cc_histogram *cc_metrics_histogram(cc_metrics *m, const char *name, const char *help,
                                          const char *labels, const double *bounds, size_t nbounds)
{
    struct family *f;
    struct series *s = NULL;
    struct cc_histogram *h = NULL;

    if (!m || !name_valid(name) || !labels_valid(labels, true) || !bounds_valid(bounds, nbounds))
        return NULL;
    pthread_mutex_lock(&m->lock);
    f = family_get(m, name, help, METRIC_HISTOGRAM);
    if (!f)
        goto unlock;
    s = series_find(f, labels);
    if (s) {
        h = &s->u.histogram;
        if (h->nbounds != nbounds || memcmp(h->bounds, bounds, nbounds * sizeof(*bounds)) != 0)
            h = NULL; /* same series, other buckets: a programming error */
        goto unlock;
    }
    s = series_add(f, labels);
    if (!s)
        goto unlock;
    if (histogram_init(&s->u.histogram, bounds, nbounds) < 0) {
        f->nseries--;
        series_free(s, METRIC_HISTOGRAM);
        goto unlock;
    }
    h = &s->u.histogram;
unlock:
    pthread_mutex_unlock(&m->lock);
    return h;
}

void cc_counter_add(struct cc_counter *c, uint64_t n)
{
    atomic_fetch_add_explicit(&c->value, n, memory_order_relaxed);
}

void cc_gauge_set(struct cc_gauge *g, double v)
{
    atomic_store_explicit(&g->bits, double_bits(v), memory_order_relaxed);
}

void cc_gauge_add(struct cc_gauge *g, double delta)
{
    atomic_add_double(&g->bits, delta);
}

void cc_histogram_observe(struct cc_histogram *h, double v)
{
    size_t lo = 0, hi = h->nbounds;

    /* first bound >= v; NaN and values above every bound land in +Inf */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v <= h->bounds[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    if (isnan(v))
        lo = h->nbounds;
    atomic_fetch_add_explicit(&h->buckets[lo], 1, memory_order_relaxed);
    atomic_add_double(&h->sum_bits, v);
}

/* Float text: integers below 1e15 in full (queue depths read better), others in the shortest
 * %g form that reads back exactly; +Inf/-Inf/NaN as Prometheus spells them. */
static void format_double(char *buf, size_t n, double v)
{
    if (isnan(v)) {
        snprintf(buf, n, "NaN");
    } else if (isinf(v)) {
        snprintf(buf, n, v > 0 ? "+Inf" : "-Inf");
    } else if (fabs(v) < 1e15 && v == trunc(v)) {
        snprintf(buf, n, "%.0f", v);
    } else {
        for (int prec = 1; prec <= 17; prec++) {
            snprintf(buf, n, "%.*g", prec, v);
            if (strtod(buf, NULL) == v)
                break;
        }
    }
}

static void render_help(FILE *f, const struct family *fam)
{
    static const char *const type_names[] = {"counter", "gauge", "histogram"};

    fprintf(f, "# HELP %s ", fam->name);
    for (const char *p = fam->help; *p; p++) {
        if (*p == '\\')
            fputs("\\\\", f);
        else if (*p == '\n')
            fputs("\\n", f);
        else
            fputc(*p, f);
    }
    fprintf(f, "\n# TYPE %s %s\n", fam->name, type_names[fam->type]);
}

/* name{labels} or name when there are none. */
static void render_name(FILE *f, const char *name, const char *suffix, const char *labels)
{
    if (labels)
        fprintf(f, "%s%s{%s} ", name, suffix, labels);
    else
        fprintf(f, "%s%s ", name, suffix);
}

static void render_histogram(FILE *f, const char *name, const struct series *s)
{
    const struct cc_histogram *h = &s->u.histogram;
    const char *sep = s->labels ? "," : "";
    const char *labels = s->labels ? s->labels : "";
    uint64_t total = 0;
    char num[32];

    for (size_t i = 0; i <= h->nbounds; i++) {
        total += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
        if (i < h->nbounds)
            format_double(num, sizeof(num), h->bounds[i]);
        else
            snprintf(num, sizeof(num), "+Inf");
        fprintf(f, "%s_bucket{%s%sle=\"%s\"} %" PRIu64 "\n", name, labels, sep, num, total);
    }
    format_double(num, sizeof(num),
                  bits_double(atomic_load_explicit(&h->sum_bits, memory_order_relaxed)));
    render_name(f, name, "_sum", s->labels);
    fprintf(f, "%s\n", num);
    render_name(f, name, "_count", s->labels);
    fprintf(f, "%" PRIu64 "\n", total);
}

static void render_family(FILE *f, const struct family *fam)
{
    char num[32];

    render_help(f, fam);
    for (size_t i = 0; i < fam->nseries; i++) {
        const struct series *s = fam->series[i];
        switch (fam->type) {
        case METRIC_COUNTER:
            render_name(f, fam->name, "", s->labels);
            fprintf(f, "%" PRIu64 "\n",
                    atomic_load_explicit(&s->u.counter.value, memory_order_relaxed));
            break;
        case METRIC_GAUGE:
            format_double(
                num, sizeof(num),
                bits_double(atomic_load_explicit(&s->u.gauge.bits, memory_order_relaxed)));
            render_name(f, fam->name, "", s->labels);
            fprintf(f, "%s\n", num);
            break;
        case METRIC_HISTOGRAM:
            render_histogram(f, fam->name, s);
            break;
        }
    }
}

char *cc_metrics_render(cc_metrics *m, size_t *len)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *f;
    bool failed;

    if (!m)
        return NULL;
    f = open_memstream(&buf, &size);
    if (!f)
        return NULL;
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < m->nfamilies; i++)
        render_family(f, m->families[i]);
    pthread_mutex_unlock(&m->lock);
    failed = ferror(f) != 0;
    if (fclose(f) != 0 || failed) {
        free(buf);
        return NULL;
    }
    if (len)
        *len = size;
    return buf;
}
