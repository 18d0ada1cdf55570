// metrics.h -- the process's Prometheus metrics: counters, gauges and
// fixed-bucket histograms in one registry, rendered as the text exposition
// format (version 0.0.4).
//
// A series is created once (dre_metric_counter & co. find or create it
// under a lock) and then updated with atomic adds only, so the handle is
// what a hot path keeps. Values that are cheap to read but live elsewhere
// (an outbox's depth, RocksDB properties) are set by a collector right
// before each rendering. Every series of the process carries the constant
// labels set by dre_metrics_init (service="<name>").
#ifndef DRE_METRICS_H
#define DRE_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "dre/buf.h"
#include "dre/err.h"

typedef struct dre_metric dre_metric;

// dre_metrics_init sets the constant labels of every series, e.g.
// `service="budget"` (dre_svc_init calls it with the process's name).
void dre_metrics_init(const char *service);

// Find or create one series of a family. name follows Prometheus naming
// (dre_<what>_<unit>[_total]); labels is the label set without braces,
// e.g. `method="evaluator.Evaluate"` ("" or NULL = none); help is kept
// from the family's first series. NULL only when out of memory (the update
// functions accept NULL and do nothing).
dre_metric *dre_metric_counter(
    const char *name, const char *help, const char *labels);
dre_metric *dre_metric_gauge(
    const char *name, const char *help, const char *labels);
// A latency histogram in seconds with the default buckets (0.5 ms .. 10 s).
dre_metric *dre_metric_histogram(
    const char *name, const char *help, const char *labels);

// dre_metric_add adds v to a counter or a gauge; dre_metric_set sets a
// gauge; dre_metric_observe_us records one duration in microseconds.
void dre_metric_add(dre_metric *m, int64_t v);
void dre_metric_set(dre_metric *m, int64_t v);
void dre_metric_observe_us(dre_metric *m, int64_t us);
// Counts that belong to a write not yet durable (an applier's batch):
// dre_metric_add_pending keeps the addition in the calling thread until
// dre_metrics_pending_commit applies them all (the batch was written) or
// dre_metrics_pending_discard drops them (it was not, and will be redone).
void dre_metric_add_pending(dre_metric *m, int64_t v);
void dre_metrics_pending_commit(void);
void dre_metrics_pending_discard(void);

// dre_metric_value reads a counter or gauge (tests).
int64_t dre_metric_value(const dre_metric *m);

static inline void
dre_metric_inc(dre_metric *m)
{
	dre_metric_add(m, 1);
}

// dre_metric_label_escape writes v into out as a label value (\\, \", \n
// escaped; truncated to fit).
void dre_metric_label_escape(char *out, size_t cap, const char *v);

// A collector sets gauges from its object before each rendering; remove it
// before the object is freed (removal waits for a rendering in progress).
typedef void (*dre_metrics_collect_fn)(void *arg);
void dre_metrics_collector_add(dre_metrics_collect_fn fn, void *arg);
void dre_metrics_collector_remove(dre_metrics_collect_fn fn, void *arg);

// dre_metrics_render runs the collectors and appends every family (# HELP,
// # TYPE, samples) to out.
void dre_metrics_render(dre_buf *out);

// dre_metrics_merge appends the exposition texts texts[0..n) to out as one
// document: the samples of a family named in several texts are grouped
// under one # HELP / # TYPE, and extra[i] (labels without braces, "" or
// NULL = none) is added to every sample of texts[i]. DRE_ECODEC when a
// text is not in the format dre_metrics_render writes.
dre_err dre_metrics_merge(dre_buf *out, const char *const *texts,
    const size_t *lens, const char *const *extra, size_t n);

#endif
