// metrics.c -- the Prometheus registry: families of series, collectors,
// the text exposition format, and merging the texts of several processes.
//
// Families and series are only ever added (never freed while the process
// runs): a handle stays valid for the life of the process, and updating it
// is one atomic add.
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dre/metrics.h"

enum { M_COUNTER, M_GAUGE, M_HISTOGRAM };

static const char *const type_names[] = { "counter", "gauge", "histogram" };

// Histogram bucket bounds in microseconds (rendered in seconds).
static const int64_t hist_bounds_us[] = { 500, 1000, 2500, 5000, 10000, 25000,
	50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000 };
#define NBOUNDS (sizeof(hist_bounds_us) / sizeof(hist_bounds_us[0]))

typedef struct family family;

struct dre_metric {
	family            *fam;
	char              *labels;
	_Atomic int64_t    value; // counter, gauge; histogram: sum in us
	_Atomic uint64_t   count; // histogram
	_Atomic uint64_t   buckets[NBOUNDS]; // histogram, not cumulative
	struct dre_metric *next;
};

struct family {
	char       *name;
	char       *help;
	int         type;
	dre_metric *series, *last;
	family     *next;
};

typedef struct collector {
	dre_metrics_collect_fn fn;
	void                  *arg;
	struct collector      *next;
} collector;

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static family         *families, *families_last;
static char            const_labels[128];

// Collectors run under their own lock, never under reg_mu: a collector
// creates series.
static pthread_mutex_t col_mu = PTHREAD_MUTEX_INITIALIZER;
static collector      *collectors;

void
dre_metrics_init(const char *service)
{
	char esc[96];

	dre_metric_label_escape(
	    esc, sizeof(esc), service != NULL ? service : "");
	pthread_mutex_lock(&reg_mu);
	snprintf(const_labels, sizeof(const_labels), "service=\"%s\"", esc);
	pthread_mutex_unlock(&reg_mu);
}

void
dre_metric_label_escape(char *out, size_t cap, const char *v)
{
	size_t n = 0;

	if (cap == 0)
		return;
	for (; v != NULL && *v != '\0'; v++) {
		const char *rep = NULL;
		if (*v == '\\')
			rep = "\\\\";
		else if (*v == '"')
			rep = "\\\"";
		else if (*v == '\n')
			rep = "\\n";
		size_t k = rep != NULL ? 2 : 1;
		if (n + k >= cap)
			break;
		if (rep != NULL)
			memcpy(out + n, rep, 2);
		else
			out[n] = *v;
		n += k;
	}
	out[n] = '\0';
}

static dre_metric *
series_get(const char *name, const char *help, const char *labels, int type)
{
	family     *f;
	dre_metric *m;

	if (labels == NULL)
		labels = "";
	pthread_mutex_lock(&reg_mu);
	for (f = families; f != NULL; f = f->next)
		if (strcmp(f->name, name) == 0)
			break;
	if (f == NULL) {
		if ((f = calloc(1, sizeof(*f))) == NULL)
			goto oom;
		f->name = strdup(name);
		f->help = strdup(help != NULL ? help : "");
		f->type = type;
		if (f->name == NULL || f->help == NULL) {
			free(f->name);
			free(f->help);
			free(f);
			goto oom;
		}
		if (families_last != NULL)
			families_last->next = f;
		else
			families = f;
		families_last = f;
	}
	for (m = f->series; m != NULL; m = m->next)
		if (strcmp(m->labels, labels) == 0)
			break;
	if (m == NULL && (m = calloc(1, sizeof(*m))) != NULL) {
		m->fam = f;
		if ((m->labels = strdup(labels)) == NULL) {
			free(m);
			goto oom;
		}
		if (f->last != NULL)
			f->last->next = m;
		else
			f->series = m;
		f->last = m;
	}
	pthread_mutex_unlock(&reg_mu);
	return m;
oom:
	pthread_mutex_unlock(&reg_mu);
	return NULL;
}

dre_metric *
dre_metric_counter(const char *name, const char *help, const char *labels)
{
	return series_get(name, help, labels, M_COUNTER);
}

dre_metric *
dre_metric_gauge(const char *name, const char *help, const char *labels)
{
	return series_get(name, help, labels, M_GAUGE);
}

dre_metric *
dre_metric_histogram(const char *name, const char *help, const char *labels)
{
	return series_get(name, help, labels, M_HISTOGRAM);
}

void
dre_metric_add(dre_metric *m, int64_t v)
{
	if (m != NULL)
		atomic_fetch_add_explicit(&m->value, v, memory_order_relaxed);
}

void
dre_metric_set(dre_metric *m, int64_t v)
{
	if (m != NULL)
		atomic_store_explicit(&m->value, v, memory_order_relaxed);
}

void
dre_metric_observe_us(dre_metric *m, int64_t us)
{
	size_t i = 0;

	if (m == NULL)
		return;
	if (us < 0)
		us = 0;
	while (i < NBOUNDS && us > hist_bounds_us[i])
		i++;
	if (i < NBOUNDS)
		atomic_fetch_add_explicit(
		    &m->buckets[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&m->value, us, memory_order_relaxed);
	atomic_fetch_add_explicit(&m->count, 1, memory_order_relaxed);
}

#define PENDING_MAX 32

static __thread struct {
	dre_metric *m;
	int64_t     v;
} pending[PENDING_MAX];
static __thread int npending;

void
dre_metric_add_pending(dre_metric *m, int64_t v)
{
	if (m == NULL)
		return;
	for (int i = 0; i < npending; i++) {
		if (pending[i].m == m) {
			pending[i].v += v;
			return;
		}
	}
	if (npending == PENDING_MAX) {
		dre_metric_add(m, v); // more kinds than kept: counted now
		return;
	}
	pending[npending].m = m;
	pending[npending++].v = v;
}

void
dre_metrics_pending_commit(void)
{
	for (int i = 0; i < npending; i++)
		dre_metric_add(pending[i].m, pending[i].v);
	npending = 0;
}

void
dre_metrics_pending_discard(void)
{
	npending = 0;
}

int64_t
dre_metric_value(const dre_metric *m)
{
	return m != NULL ? atomic_load(&((dre_metric *) m)->value) : 0;
}

void
dre_metrics_collector_add(dre_metrics_collect_fn fn, void *arg)
{
	collector *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return;
	c->fn = fn;
	c->arg = arg;
	pthread_mutex_lock(&col_mu);
	c->next = collectors;
	collectors = c;
	pthread_mutex_unlock(&col_mu);
}

void
dre_metrics_collector_remove(dre_metrics_collect_fn fn, void *arg)
{
	pthread_mutex_lock(&col_mu);
	for (collector **p = &collectors; *p != NULL; p = &(*p)->next) {
		if ((*p)->fn == fn && (*p)->arg == arg) {
			collector *c = *p;
			*p = c->next;
			free(c);
			break;
		}
	}
	pthread_mutex_unlock(&col_mu);
}

// labels_write appends {const, labels[, extra]} (nothing when all empty).
static void
labels_write(dre_buf *out, const char *labels, const char *extra)
{
	const char *parts[3] = { const_labels, labels, extra };
	bool        any = false;

	for (int i = 0; i < 3; i++) {
		if (parts[i] == NULL || parts[i][0] == '\0')
			continue;
		dre_buf_putc(out, any ? ',' : '{');
		dre_buf_puts(out, parts[i]);
		any = true;
	}
	if (any)
		dre_buf_putc(out, '}');
}

// seconds_write appends us as seconds with 6 decimals.
static void
seconds_write(dre_buf *out, int64_t us)
{
	dre_buf_printf(out, "%lld.%06lld", (long long) (us / 1000000),
	    (long long) (us % 1000000));
}

static void
family_write(dre_buf *out, const family *f)
{
	dre_buf_printf(out, "# HELP %s ", f->name);
	// HELP escapes \ and newline only.
	for (const char *h = f->help; *h != '\0'; h++) {
		if (*h == '\\')
			dre_buf_puts(out, "\\\\");
		else if (*h == '\n')
			dre_buf_puts(out, "\\n");
		else
			dre_buf_putc(out, *h);
	}
	dre_buf_printf(out, "\n# TYPE %s %s\n", f->name, type_names[f->type]);
	for (const dre_metric *m = f->series; m != NULL; m = m->next) {
		if (f->type != M_HISTOGRAM) {
			dre_buf_puts(out, f->name);
			labels_write(out, m->labels, NULL);
			dre_buf_printf(out, " %lld\n",
			    (long long) atomic_load(
			        &((dre_metric *) m)->value));
			continue;
		}
		uint64_t cum = 0;
		char     le[32];
		for (size_t i = 0; i < NBOUNDS; i++) {
			cum += atomic_load(&((dre_metric *) m)->buckets[i]);
			snprintf(le, sizeof(le), "le=\"%lld.%06lld\"",
			    (long long) (hist_bounds_us[i] / 1000000),
			    (long long) (hist_bounds_us[i] % 1000000));
			dre_buf_printf(out, "%s_bucket", f->name);
			labels_write(out, m->labels, le);
			dre_buf_printf(
			    out, " %llu\n", (unsigned long long) cum);
		}
		// +Inf is the count, read once so that the document is
		// consistent with itself.
		uint64_t count = atomic_load(&((dre_metric *) m)->count);
		if (count < cum)
			count = cum;
		dre_buf_printf(out, "%s_bucket", f->name);
		labels_write(out, m->labels, "le=\"+Inf\"");
		dre_buf_printf(out, " %llu\n", (unsigned long long) count);
		dre_buf_printf(out, "%s_sum", f->name);
		labels_write(out, m->labels, NULL);
		dre_buf_putc(out, ' ');
		seconds_write(out, atomic_load(&((dre_metric *) m)->value));
		dre_buf_putc(out, '\n');
		dre_buf_printf(out, "%s_count", f->name);
		labels_write(out, m->labels, NULL);
		dre_buf_printf(out, " %llu\n", (unsigned long long) count);
	}
}

void
dre_metrics_render(dre_buf *out)
{
	pthread_mutex_lock(&col_mu);
	for (collector *c = collectors; c != NULL; c = c->next)
		c->fn(c->arg);
	pthread_mutex_unlock(&col_mu);

	pthread_mutex_lock(&reg_mu);
	for (const family *f = families; f != NULL; f = f->next)
		family_write(out, f);
	pthread_mutex_unlock(&reg_mu);
}

// ---- merge ---------------------------------------------------------------

typedef struct {
	const char *name; // in one of the texts
	size_t      nlen;
	const char *meta; // "# HELP ...\n# TYPE ...\n"
	size_t      mlen;
	dre_buf     samples;
} mfamily;

static const char *
line_end(const char *p, const char *end)
{
	const char *nl = memchr(p, '\n', (size_t) (end - p));
	return nl != NULL ? nl : end;
}

// sample_write appends one sample line with extra labels added.
static dre_err
sample_write(dre_buf *out, const char *p, size_t n, const char *extra)
{
	size_t i = 0;

	while (i < n && p[i] != '{' && p[i] != ' ')
		i++;
	if (i == 0 || i == n)
		return DRE_ECODEC;
	dre_buf_append(out, p, i);
	if (extra == NULL || extra[0] == '\0') {
		dre_buf_append(out, p + i, n - i);
	} else if (p[i] == '{') {
		dre_buf_putc(out, '{');
		dre_buf_puts(out, extra);
		if (i + 1 < n && p[i + 1] != '}')
			dre_buf_putc(out, ',');
		dre_buf_append(out, p + i + 1, n - i - 1);
	} else {
		dre_buf_putc(out, '{');
		dre_buf_puts(out, extra);
		dre_buf_putc(out, '}');
		dre_buf_append(out, p + i, n - i);
	}
	dre_buf_putc(out, '\n');
	return DRE_OK;
}

dre_err
dre_metrics_merge(dre_buf *out, const char *const *texts, const size_t *lens,
    const char *const *extra, size_t n)
{
	mfamily *fams = NULL;
	size_t   nfams = 0, cap = 0;
	dre_err  err = DRE_OK;

	for (size_t t = 0; t < n && err == DRE_OK; t++) {
		const char *p = texts[t], *end = texts[t] + lens[t];
		mfamily    *cur = NULL;
		while (p < end && err == DRE_OK) {
			const char *e = line_end(p, end);
			size_t      len = (size_t) (e - p);
			if (len >= 7 && memcmp(p, "# HELP ", 7) == 0) {
				// A family starts: HELP then TYPE.
				const char *nm = p + 7;
				const char *sp = memchr(nm, ' ', len - 7);
				size_t nlen = sp != NULL ? (size_t) (sp - nm)
				                         : len - 7;
				const char *e2
				    = e < end ? line_end(e + 1, end) : end;
				if (e >= end
				    || (size_t) (e2 - e - 1) < 7 + nlen
				    || memcmp(e + 1, "# TYPE ", 7) != 0
				    || memcmp(e + 8, nm, nlen) != 0) {
					err = DRE_ECODEC;
					break;
				}
				cur = NULL;
				for (size_t k = 0; k < nfams; k++)
					if (fams[k].nlen == nlen
					    && memcmp(fams[k].name, nm, nlen)
					        == 0)
						cur = &fams[k];
				if (cur == NULL) {
					if (nfams == cap) {
						size_t nc = cap ? cap * 2 : 64;
						mfamily *nf = realloc(
						    fams, nc * sizeof(*nf));
						if (nf == NULL) {
							err = DRE_ENOMEM;
							break;
						}
						fams = nf;
						cap = nc;
					}
					cur = &fams[nfams++];
					memset(cur, 0, sizeof(*cur));
					cur->name = nm;
					cur->nlen = nlen;
					cur->meta = p;
					cur->mlen = (size_t) (e2 - p);
				}
				p = e2 < end ? e2 + 1 : end;
				continue;
			}
			if (len == 0 || p[0] == '#') {
				p = e < end ? e + 1 : end;
				continue;
			}
			if (cur == NULL) {
				err = DRE_ECODEC;
				break;
			}
			err = sample_write(&cur->samples, p, len,
			    extra != NULL ? extra[t] : NULL);
			p = e < end ? e + 1 : end;
		}
	}
	for (size_t k = 0; k < nfams; k++) {
		if (err == DRE_OK) {
			dre_buf_append(out, fams[k].meta, fams[k].mlen);
			dre_buf_putc(out, '\n');
			dre_buf_append(
			    out, fams[k].samples.data, fams[k].samples.len);
			if (fams[k].samples.oom)
				err = DRE_ENOMEM;
		}
		dre_buf_free(&fams[k].samples);
	}
	free(fams);
	return err;
}
