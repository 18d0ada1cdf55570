// bus.c -- Kafka through librdkafka: idempotent producer, assigned consumer.
//
// librdkafka's errors are logged here once and become DRE_EBUS, DRE_ECONFIG,
// DRE_ETIMEOUT, DRE_EUNAVAIL or DRE_ENOTFOUND for the caller.
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "bus_int.h"
#include "dre/bus.h"
#include "dre/log.h"
#include "dre/svc.h"
#include "dre/topics.h"

// How long dre_producer_send waits in total for room in a full local queue
// before it gives up: long enough to ride out a burst, short enough that a
// caller holding a request never hangs.
#define QUEUE_FULL_WAIT_MS 5000
#define QUEUE_FULL_STEP_MS 10
// While no broker is known to be reachable the poll thread probes the
// cluster this often, so connected turns true again without traffic.
#define PROBE_INTERVAL_MS 1000

struct dre_producer {
	rd_kafka_t     *rk;
	dre_delivery_fn fn;
	void           *arg;
	pthread_t       thread;
	atomic_bool     stop;
	atomic_bool     connected;
	atomic_bool     failing; // last delivery failed: log transitions only
};

struct dre_consumer {
	rd_kafka_t                      *rk;
	rd_kafka_message_t              *last; // borrowed by the caller
	rd_kafka_topic_partition_list_t *assigned;
	dre_rebalance_fn                 rb; // group mode
	void                            *rb_arg;
};

static int64_t
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long) (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

void
dre_bus_log_cb(
    const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	// Pass-through properties are shared by producers and consumers;
	// each ignores (and warns about) the other's.
	if (strcmp(fac, "CONFWARN") == 0) {
		dre_debug("kafka %s %s: %s", rd_kafka_name(rk), fac, buf);
		return;
	}
	dre_log_level l = level <= LOG_ERR ? DRE_LOG_ERROR
	    : level == LOG_WARNING         ? DRE_LOG_WARN
	    : level <= LOG_INFO            ? DRE_LOG_INFO
	                                   : DRE_LOG_DEBUG;
	dre_log(l, "kafka %s %s: %s", rd_kafka_name(rk), fac, buf);
}

static dre_err
conf_set(rd_kafka_conf_t *conf, const char *key, const char *val)
{
	char errstr[512];
	if (rd_kafka_conf_set(conf, key, val, errstr, sizeof(errstr))
	    != RD_KAFKA_CONF_OK) {
		dre_error("kafka.%s=%s: %s", key, val, errstr);
		return DRE_ECONFIG;
	}
	return DRE_OK;
}

// conf_new applies defaults (pairs, NULL-terminated), then the pass-through
// properties verbatim, then forced (settings correctness depends on).
static dre_err
conf_new(rd_kafka_conf_t **confp, const dre_kvlist *props,
    const char *const *defaults, const char *const *forced)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	dre_err          e = DRE_OK;
	for (size_t i = 0; e == DRE_OK && defaults && defaults[i]; i += 2)
		e = conf_set(conf, defaults[i], defaults[i + 1]);
	for (size_t i = 0; e == DRE_OK && props && i < props->n; i++)
		e = conf_set(conf, props->keys[i], props->vals[i]);
	for (size_t i = 0; e == DRE_OK && forced && forced[i]; i += 2) {
		const char *mine
		    = props ? dre_kvlist_get(props, forced[i]) : NULL;
		if (mine != NULL && strcmp(mine, forced[i + 1]) != 0)
			dre_warn("kafka.%s=%s ignored: DRE needs %s",
			    forced[i], mine, forced[i + 1]);
		e = conf_set(conf, forced[i], forced[i + 1]);
	}
	if (e != DRE_OK) {
		rd_kafka_conf_destroy(conf);
		return e;
	}
	rd_kafka_conf_set_log_cb(conf, dre_bus_log_cb);
	*confp = conf;
	return DRE_OK;
}

// handle_new creates a client; conf is owned by the client on success and
// destroyed on failure.
static dre_err
handle_new(rd_kafka_t **rkp, rd_kafka_type_t type, rd_kafka_conf_t *conf)
{
	char        errstr[512];
	rd_kafka_t *rk = rd_kafka_new(type, conf, errstr, sizeof(errstr));
	if (rk == NULL) {
		rd_kafka_conf_destroy(conf);
		dre_error("kafka: creating client: %s", errstr);
		return DRE_ECONFIG;
	}
	*rkp = rk;
	return DRE_OK;
}

static dre_err
map_err(rd_kafka_resp_err_t err)
{
	switch (err) {
	case RD_KAFKA_RESP_ERR_NO_ERROR:
		return DRE_OK;
	case RD_KAFKA_RESP_ERR__TIMED_OUT:
	case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
	case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
		return DRE_ETIMEOUT;
	case RD_KAFKA_RESP_ERR__TRANSPORT:
	case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
		return DRE_EUNAVAIL;
	case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
	case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
	case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
		return DRE_ENOTFOUND;
	default:
		return DRE_EBUS;
	}
}

// ---- producer -----------------------------------------------------------

static void
dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	dre_producer *p = opaque;
	dre_err       e = map_err(m->err);
	if (e == DRE_OK) {
		if (atomic_exchange(&p->failing, false))
			dre_info("kafka: deliveries succeed again");
		atomic_store(&p->connected, true);
	} else if (!atomic_exchange(&p->failing, true)) {
		dre_warn("kafka: delivery to %s failed: %s",
		    rd_kafka_topic_name(m->rkt), rd_kafka_err2str(m->err));
	}
	if (p->fn != NULL)
		p->fn(p->arg, e, m->_private, m->partition, m->offset);
}

static void
error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	dre_producer *p = opaque;
	if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
		if (atomic_exchange(&p->connected, false))
			dre_warn("kafka: all brokers down: %s", reason);
		return;
	}
	if (err == RD_KAFKA_RESP_ERR__FATAL) {
		char                buf[512];
		rd_kafka_resp_err_t orig
		    = rd_kafka_fatal_error(rk, buf, sizeof(buf));
		dre_error("kafka: fatal producer error %s: %s",
		    rd_kafka_err2name(orig), buf);
		return;
	}
	// Transport errors repeat on every reconnect attempt while a broker
	// is away; the all-brokers-down transition above is the signal.
	if (err == RD_KAFKA_RESP_ERR__TRANSPORT)
		dre_debug("kafka: %s", reason);
	else
		dre_warn("kafka: %s: %s",
		    rd_kafka_err2name((rd_kafka_resp_err_t) err), reason);
}

// probe asks for cluster metadata: an answer proves a broker is reachable.
static bool
probe(rd_kafka_t *rk, int timeout_ms)
{
	const struct rd_kafka_metadata *md = NULL;
	if (rd_kafka_metadata(rk, 0, NULL, &md, timeout_ms)
	    != RD_KAFKA_RESP_ERR_NO_ERROR)
		return false;
	bool ok = md->broker_cnt > 0;
	rd_kafka_metadata_destroy(md);
	return ok;
}

static void *
producer_thread(void *arg)
{
	dre_producer *p = arg;
	int64_t       last_probe = 0;
	dre_thread_name("kafka:producer", NULL);
	while (!atomic_load(&p->stop)) {
		rd_kafka_poll(p->rk, 100);
		if (!atomic_load(&p->connected)
		    && now_ms() - last_probe >= PROBE_INTERVAL_MS) {
			last_probe = now_ms();
			if (probe(p->rk, 500)
			    && !atomic_exchange(&p->connected, true))
				dre_info("kafka: producer connected");
		}
	}
	return NULL;
}

dre_err
dre_producer_open(
    dre_producer **pp, const dre_kvlist *props, dre_delivery_fn fn, void *arg)
{
	// linger.ms 2: a confirm waits for its own ack, so batch only briefly.
	// murmur2_random partitions keys as the Java client does, so other
	// producers of the same keys land on the same partitions.
	static const char *const defaults[] = {
		"linger.ms",
		"2",
		"partitioner",
		"murmur2_random",
		"message.timeout.ms",
		"30000",
		"socket.keepalive.enable",
		"true",
		"reconnect.backoff.max.ms",
		"1000",
		NULL,
	};
	// Topics are declared (common/src/topics.c) and created with their
	// partition counts by whoever runs Kafka (dre-broker, a deployment
	// step), never by a producer's first message: a topic a producer made
	// has the broker's default partitions (after a restart of the dev
	// broker a relay could win that race against dre-broker's creation).
	static const char *const forced[] = {
		"enable.idempotence",
		"true",
		"acks",
		"all",
		"allow.auto.create.topics",
		"false",
		NULL,
	};
	dre_producer *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return DRE_ENOMEM;
	p->fn = fn;
	p->arg = arg;
	rd_kafka_conf_t *conf = NULL;
	dre_err          e = conf_new(&conf, props, defaults, forced);
	if (e != DRE_OK) {
		free(p);
		return e;
	}
	rd_kafka_conf_set_opaque(conf, p);
	rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
	rd_kafka_conf_set_error_cb(conf, error_cb);
	if ((e = handle_new(&p->rk, RD_KAFKA_PRODUCER, conf)) != DRE_OK) {
		free(p);
		return e;
	}
	conf = NULL; // now owned by p->rk
	if (pthread_create(&p->thread, NULL, producer_thread, p) != 0) {
		rd_kafka_destroy(p->rk);
		free(p);
		return DRE_ENOMEM;
	}
	*pp = p;
	return DRE_OK;
}

dre_err
dre_producer_send(dre_producer *p, const char *topic, const void *key,
    size_t klen, const void *val, size_t vlen, void *msg_opaque)
{
	for (int waited = 0;; waited += QUEUE_FULL_STEP_MS) {
		rd_kafka_resp_err_t err
		    = rd_kafka_producev(p->rk, RD_KAFKA_V_TOPIC(topic),
		        RD_KAFKA_V_KEY((void *) key, klen),
		        RD_KAFKA_V_VALUE((void *) val, vlen),
		        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
		        RD_KAFKA_V_OPAQUE(msg_opaque), RD_KAFKA_V_END);
		if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
			return DRE_OK;
		if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
			dre_error("kafka: produce to %s: %s", topic,
			    rd_kafka_err2str(err));
			return err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC
			    ? DRE_ENOTFOUND
			    : DRE_EBUS;
		}
		if (waited >= QUEUE_FULL_WAIT_MS) {
			dre_warn("kafka: local queue full for %d ms, %s "
			         "message not sent",
			    waited, topic);
			return DRE_EUNAVAIL;
		}
		// The poll thread serves delivery reports, which frees room.
		sleep_ms(QUEUE_FULL_STEP_MS);
	}
}

dre_err
dre_producer_flush(dre_producer *p, int timeout_ms)
{
	rd_kafka_resp_err_t err = rd_kafka_flush(p->rk, timeout_ms);
	return err == RD_KAFKA_RESP_ERR_NO_ERROR ? DRE_OK : map_err(err);
}

bool
dre_producer_connected(const dre_producer *p)
{
	return atomic_load(&((dre_producer *) p)->connected);
}

int
dre_producer_outq_len(dre_producer *p)
{
	return rd_kafka_outq_len(p->rk);
}

// ends_query reads the high watermark (next offset) of each of the n
// partitions in po into its offset: one ListOffsets request per leader
// broker (offsets_for_times with the "latest" timestamp), not one round
// trip per partition.
static dre_err
ends_query(rd_kafka_t *rk, dre_partition_offset *po, size_t n, int timeout_ms)
{
	if (n == 0)
		return DRE_OK;
	if (n > INT_MAX)
		return DRE_ETOOBIG;
	rd_kafka_topic_partition_list_t *l
	    = rd_kafka_topic_partition_list_new((int) n);
	for (size_t i = 0; i < n; i++)
		rd_kafka_topic_partition_list_add(
		    l, po[i].topic, po[i].partition)
		    ->offset
		    = RD_KAFKA_OFFSET_END;
	rd_kafka_resp_err_t err
	    = rd_kafka_offsets_for_times(rk, l, timeout_ms);
	for (int i = 0; err == RD_KAFKA_RESP_ERR_NO_ERROR && i < l->cnt; i++)
		err = l->elems[i].err;
	if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
		dre_debug("kafka: the ends of %zu partition(s) of %s: %s", n,
		    po[0].topic, rd_kafka_err2str(err));
		rd_kafka_topic_partition_list_destroy(l);
		return map_err(err);
	}
	for (size_t i = 0; i < n; i++)
		po[i].offset = l->elems[i].offset;
	rd_kafka_topic_partition_list_destroy(l);
	return DRE_OK;
}

dre_err
dre_producer_ends(
    dre_producer *p, dre_partition_offset *po, size_t n, int timeout_ms)
{
	return ends_query(p->rk, po, n, timeout_ms);
}

bool
dre_producer_fatal(dre_producer *p)
{
	return rd_kafka_fatal_error(p->rk, NULL, 0)
	    != RD_KAFKA_RESP_ERR_NO_ERROR;
}

void
dre_producer_close(dre_producer *p)
{
	if (p == NULL)
		return;
	atomic_store(&p->stop, true);
	pthread_join(p->thread, NULL);
	if (rd_kafka_flush(p->rk, 2000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
		dre_warn("kafka: %d message(s) not delivered at close",
		    rd_kafka_outq_len(p->rk));
		// Purged messages get a failed delivery report, so every
		// message the caller sent is answered before we return.
		rd_kafka_purge(
		    p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
		rd_kafka_poll(p->rk, 0);
	}
	rd_kafka_destroy(p->rk);
	free(p);
}

// ---- one-off queries ----------------------------------------------------

static dre_err
query_handle(rd_kafka_t **rkp, const dre_kvlist *props)
{
	rd_kafka_conf_t *conf = NULL;
	dre_err          e = conf_new(&conf, props, NULL, NULL);
	if (e == DRE_OK)
		e = handle_new(rkp, RD_KAFKA_PRODUCER, conf);
	return e;
}

// partition_counts reads each of n topics' partition count from the
// cluster's metadata (0: no such topic). It asks for every topic's: a
// request naming topics makes a broker that only speaks Metadata v0-3 (the
// dev broker, librdkafka's mock) create those it lacks.
static dre_err
partition_counts(rd_kafka_t *rk, const char *const *topics, size_t n,
    int *counts, int timeout_ms)
{
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_resp_err_t             err
	    = rd_kafka_metadata(rk, 1, NULL, &md, timeout_ms);
	if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
		dre_warn("kafka: metadata: %s", rd_kafka_err2str(err));
		return map_err(err);
	}
	for (size_t k = 0; k < n; k++) {
		counts[k] = 0;
		for (int i = 0; i < md->topic_cnt; i++)
			if (strcmp(md->topics[i].topic, topics[k]) == 0
			    && md->topics[i].err
			        != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
				counts[k] = md->topics[i].partition_cnt;
	}
	rd_kafka_metadata_destroy(md);
	return DRE_OK;
}

dre_err
dre_bus_cluster_info(const dre_kvlist *props, char *id, size_t cap,
    const char *const *topics, size_t n, int *counts, int timeout_ms)
{
	rd_kafka_t *rk = NULL;
	dre_err     e = query_handle(&rk, props);
	if (e != DRE_OK)
		return e;
	// The topics first: their Metadata answer carries the cluster id too,
	// which librdkafka keeps, so asking for it then costs no round trip.
	dre_err ec = DRE_OK;
	if (n > 0
	    && (ec = partition_counts(rk, topics, n, counts, timeout_ms))
	        != DRE_OK)
		memset(counts, 0, n * sizeof(*counts));
	if (id != NULL) {
		// (the id answers whether the cluster is reached)
		char *got = rd_kafka_clusterid(rk, timeout_ms);
		if (got == NULL) {
			dre_warn(
			    "kafka: no cluster id within %d ms", timeout_ms);
			e = DRE_EUNAVAIL;
		} else if (strlen(got) >= cap) {
			e = DRE_ETOOBIG;
		} else {
			memcpy(id, got, strlen(got) + 1);
		}
		if (got != NULL)
			rd_kafka_mem_free(rk, got);
	} else {
		e = ec;
	}
	rd_kafka_destroy(rk);
	return e;
}

dre_err
dre_bus_cluster_id(
    const dre_kvlist *props, char *buf, size_t cap, int timeout_ms)
{
	return dre_bus_cluster_info(
	    props, buf, cap, NULL, 0, NULL, timeout_ms);
}

dre_err
dre_bus_topic_ends(const dre_kvlist *props, const char *topic, int64_t *high,
    size_t cap, size_t *n, int timeout_ms)
{
	rd_kafka_t *rk = NULL;
	dre_err     e = query_handle(&rk, props);
	if (e != DRE_OK)
		return e;
	int np = 0;
	*n = 0;
	e = partition_counts(rk, &topic, 1, &np, timeout_ms);
	if (e == DRE_OK && np == 0) {
		dre_warn("kafka: no topic %s", topic);
		e = DRE_ENOTFOUND;
	} else if (e == DRE_OK && (size_t) np > cap) {
		e = DRE_ETOOBIG;
	}
	dre_partition_offset *po
	    = e == DRE_OK && np > 0 ? malloc((size_t) np * sizeof(*po)) : NULL;
	if (e == DRE_OK && np > 0 && po == NULL)
		e = DRE_ENOMEM;
	for (int p = 0; po != NULL && p < np; p++)
		po[p] = (dre_partition_offset) { topic, p, 0 };
	if (e == DRE_OK)
		e = ends_query(rk, po, (size_t) np, timeout_ms);
	for (int p = 0; e == DRE_OK && p < np; p++)
		high[p] = po[p].offset;
	free(po);
	if (e != DRE_OK && np > 0)
		dre_warn("kafka: the ends of %s: %s", topic, dre_strerror(e));
	if (e == DRE_OK)
		*n = (size_t) np;
	rd_kafka_destroy(rk);
	return e;
}

// ---- consumer -----------------------------------------------------------

// to_rd maps a DRE offset to librdkafka's; false when it is invalid.
static bool
to_rd(int64_t off, int64_t *out)
{
	*out = off == DRE_OFFSET_BEGINNING ? RD_KAFKA_OFFSET_BEGINNING
	    : off == DRE_OFFSET_END        ? RD_KAFKA_OFFSET_END
	                                   : off;
	return off >= 0 || off == DRE_OFFSET_BEGINNING
	    || off == DRE_OFFSET_END;
}

// rebalance_cb hands a group assignment change to the owner, who fills the
// start offsets (assign) or finishes its work on the partitions (revoke),
// then applies it: positions come from the owner's store, never from
// committed group offsets.
static void
rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
    rd_kafka_topic_partition_list_t *parts, void *opaque)
{
	dre_consumer *c = opaque;
	bool          assign = err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS;
	bool          coop
	    = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
	size_t                n = (size_t) parts->cnt;
	dre_partition_offset *po = calloc(n ? n : 1, sizeof(*po));
	if (po == NULL) {
		dre_error("kafka: rebalance: out of memory");
		abort(); // a half-applied assignment would skip or repeat
	}
	for (size_t i = 0; i < n; i++)
		po[i] = (dre_partition_offset) { parts->elems[i].topic,
			parts->elems[i].partition, DRE_OFFSET_BEGINNING };
	if (c->rb != NULL)
		c->rb(c->rb_arg, assign, po, n);
	if (assign)
		for (size_t i = 0; i < n; i++) {
			int64_t off = RD_KAFKA_OFFSET_BEGINNING;
			if (!to_rd(po[i].offset, &off))
				off = RD_KAFKA_OFFSET_BEGINNING;
			parts->elems[i].offset = off;
		}
	free(po);
	rd_kafka_error_t   *e = NULL;
	rd_kafka_resp_err_t re = RD_KAFKA_RESP_ERR_NO_ERROR;
	if (coop)
		e = assign ? rd_kafka_incremental_assign(rk, parts)
		           : rd_kafka_incremental_unassign(rk, parts);
	else
		re = rd_kafka_assign(rk, assign ? parts : NULL);
	if (e != NULL) {
		dre_error("kafka: rebalance: %s", rd_kafka_error_string(e));
		rd_kafka_error_destroy(e);
	} else if (re != RD_KAFKA_RESP_ERR_NO_ERROR) {
		dre_error("kafka: rebalance: %s", rd_kafka_err2str(re));
	} else {
		dre_info("kafka: group %s %d partition(s)",
		    assign ? "assigned" : "revoked", parts->cnt);
	}
}

// How long a fetch waits in the broker when there is nothing new. A real
// Kafka answers as soon as an event arrives, so a long wait costs no
// latency and saves idle fetches; the embedded broker (librdkafka's mock
// cluster) holds an empty fetch for the whole wait even when data arrives,
// so each hop of the side-effect chain waits half of it on average there:
// tools/stack and the test harness set 5 ms.
static atomic_int fetch_wait_ms = 5;

void
dre_bus_set_fetch_wait_ms(int ms)
{
	atomic_store(&fetch_wait_ms, ms > 0 ? ms : 1);
}

const char *
dre_consumer_setting(dre_consumer *c, const char *name, char *buf, size_t cap)
{
	size_t n = cap;
	if (rd_kafka_conf_get(rd_kafka_conf(c->rk), name, buf, &n)
	    != RD_KAFKA_CONF_OK)
		return NULL;
	return buf;
}

static dre_err
consumer_new(dre_consumer **cp, const dre_kvlist *props, const char *group_id,
    dre_rebalance_fn rb, void *rb_arg)
{
	// librdkafka only assigns partitions for a consumer with a group id;
	// a statically assigned consumer never joins or commits, so any name
	// serves.
	char wait[16];
	snprintf(wait, sizeof(wait), "%d", atomic_load(&fetch_wait_ms));
	const char *const defaults[] = {
		"group.id",
		"dre-static-assignment",
		"fetch.wait.max.ms",
		wait,
		"reconnect.backoff.max.ms",
		"1000",
		"enable.partition.eof",
		"false",
		NULL,
	};
	// Positions live in the consumer's own store, written with its state;
	// a lost position is an alarm, never a silent skip.
	static const char *const forced[] = {
		"auto.offset.reset",
		"error",
		"enable.auto.commit",
		"false",
		"enable.auto.offset.store",
		"false",
		NULL,
	};
	rd_kafka_conf_t *conf = NULL;
	dre_err          e = conf_new(&conf, props, defaults, forced);
	if (e != DRE_OK)
		return e;
	if (group_id != NULL && (e = conf_set(conf, "group.id", group_id))) {
		rd_kafka_conf_destroy(conf);
		return e;
	}
	dre_consumer *c = calloc(1, sizeof(*c));
	if (c == NULL) {
		rd_kafka_conf_destroy(conf);
		return DRE_ENOMEM;
	}
	c->rb = rb;
	c->rb_arg = rb_arg;
	if (rb != NULL) {
		rd_kafka_conf_set_opaque(conf, c);
		rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
	}
	c->assigned = rd_kafka_topic_partition_list_new(8);
	if ((e = handle_new(&c->rk, RD_KAFKA_CONSUMER, conf)) != DRE_OK) {
		rd_kafka_topic_partition_list_destroy(c->assigned);
		free(c);
		return e;
	}
	conf = NULL; // now owned by c->rk
	rd_kafka_poll_set_consumer(c->rk);
	*cp = c;
	return DRE_OK;
}

dre_err
dre_consumer_open(
    dre_consumer **cp, const dre_kvlist *props, const char *group_id)
{
	return consumer_new(cp, props, group_id, NULL, NULL);
}

dre_err
dre_consumer_open_group(dre_consumer **cp, const dre_kvlist *props,
    const char *group_id, dre_rebalance_fn fn, void *arg)
{
	if (group_id == NULL || group_id[0] == '\0' || fn == NULL)
		return DRE_EINVAL;
	return consumer_new(cp, props, group_id, fn, arg);
}

dre_err
dre_consumer_subscribe(dre_consumer *c, const char *const *topics, size_t n)
{
	rd_kafka_topic_partition_list_t *l
	    = rd_kafka_topic_partition_list_new((int) n);
	for (size_t i = 0; i < n; i++)
		rd_kafka_topic_partition_list_add(
		    l, topics[i], RD_KAFKA_PARTITION_UA);
	rd_kafka_resp_err_t err = rd_kafka_subscribe(c->rk, l);
	rd_kafka_topic_partition_list_destroy(l);
	if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
		dre_error("kafka: subscribe: %s", rd_kafka_err2str(err));
		return DRE_EBUS;
	}
	return DRE_OK;
}

dre_err
dre_consumer_seek(dre_consumer *c, const dre_partition_offset *po, size_t n)
{
	rd_kafka_topic_partition_list_t *l
	    = rd_kafka_topic_partition_list_new((int) n);
	for (size_t i = 0; i < n; i++) {
		int64_t off = 0;
		if (!to_rd(po[i].offset, &off)) {
			rd_kafka_topic_partition_list_destroy(l);
			return DRE_EINVAL;
		}
		rd_kafka_topic_partition_list_add(
		    l, po[i].topic, po[i].partition)
		    ->offset
		    = off;
	}
	rd_kafka_error_t *e = rd_kafka_seek_partitions(c->rk, l, 5000);
	dre_err           rc = DRE_OK;
	if (e != NULL) {
		dre_warn("kafka: seek: %s", rd_kafka_error_string(e));
		rd_kafka_error_destroy(e);
		rc = DRE_EBUS;
	}
	for (int i = 0; rc == DRE_OK && i < l->cnt; i++)
		if (l->elems[i].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
			dre_warn("kafka: seek %s[%d]: %s", l->elems[i].topic,
			    l->elems[i].partition,
			    rd_kafka_err2str(l->elems[i].err));
			rc = DRE_EBUS;
		}
	rd_kafka_topic_partition_list_destroy(l);
	return rc;
}

dre_err
dre_consumer_assign(
    dre_consumer *c, const char *topic, int32_t partition, int64_t offset)
{
	int64_t off = offset == DRE_OFFSET_BEGINNING
	    ? RD_KAFKA_OFFSET_BEGINNING
	    : offset == DRE_OFFSET_END ? RD_KAFKA_OFFSET_END
	                               : offset;
	if (off < 0 && off != RD_KAFKA_OFFSET_BEGINNING
	    && off != RD_KAFKA_OFFSET_END)
		return DRE_EINVAL;
	// A consumer without a group cannot assign incrementally, so the whole
	// assignment is handed over again; partitions already consuming keep
	// their current positions, the new (or re-assigned) one starts at off.
	rd_kafka_topic_partition_list_t *all
	    = rd_kafka_topic_partition_list_copy(c->assigned);
	if (all->cnt > 0) {
		rd_kafka_resp_err_t err = rd_kafka_position(c->rk, all);
		if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
			dre_error(
			    "kafka: positions: %s", rd_kafka_err2str(err));
			rd_kafka_topic_partition_list_destroy(all);
			return DRE_EBUS;
		}
	}
	for (int i = 0; i < all->cnt; i++) {
		if (all->elems[i].offset == RD_KAFKA_OFFSET_INVALID)
			all->elems[i].offset = c->assigned->elems[i].offset;
		all->elems[i].err = RD_KAFKA_RESP_ERR_NO_ERROR;
	}
	rd_kafka_topic_partition_t *tp
	    = rd_kafka_topic_partition_list_find(all, topic, partition);
	if (tp == NULL)
		tp = rd_kafka_topic_partition_list_add(all, topic, partition);
	tp->offset = off;
	rd_kafka_resp_err_t err = rd_kafka_assign(c->rk, all);
	if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
		dre_error("kafka: assign %s[%d]: %s", topic, partition,
		    rd_kafka_err2str(err));
		rd_kafka_topic_partition_list_destroy(all);
		return DRE_EBUS;
	}
	rd_kafka_topic_partition_list_destroy(c->assigned);
	c->assigned = all;
	return DRE_OK;
}

dre_err
dre_consumer_assign_list(
    dre_consumer *c, const dre_partition_offset *po, size_t n)
{
	rd_kafka_topic_partition_list_t *all
	    = rd_kafka_topic_partition_list_new((int) n);
	for (size_t i = 0; i < n; i++) {
		int64_t off = po[i].offset == DRE_OFFSET_BEGINNING
		    ? RD_KAFKA_OFFSET_BEGINNING
		    : po[i].offset == DRE_OFFSET_END ? RD_KAFKA_OFFSET_END
		                                     : po[i].offset;
		if (off < 0 && off != RD_KAFKA_OFFSET_BEGINNING
		    && off != RD_KAFKA_OFFSET_END) {
			rd_kafka_topic_partition_list_destroy(all);
			return DRE_EINVAL;
		}
		rd_kafka_topic_partition_list_add(
		    all, po[i].topic, po[i].partition)
		    ->offset
		    = off;
	}
	rd_kafka_resp_err_t err = rd_kafka_assign(c->rk, all);
	if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
		dre_error("kafka: assign %zu partitions: %s", n,
		    rd_kafka_err2str(err));
		rd_kafka_topic_partition_list_destroy(all);
		return DRE_EBUS;
	}
	rd_kafka_topic_partition_list_destroy(c->assigned);
	c->assigned = all;
	return DRE_OK;
}

dre_err
dre_consumer_assign_topic(dre_consumer *c, const char *topic, int64_t offset)
{
	const dre_topic *t = dre_topic_find(topic);
	if (t == NULL || t->partitions <= 0 || t->partitions > 1024)
		return DRE_EINVAL;
	dre_partition_offset po[1024];
	for (int p = 0; p < t->partitions; p++)
		po[p] = (dre_partition_offset) { topic, p, offset };
	return dre_consumer_assign_list(c, po, (size_t) t->partitions);
}

bool
dre_consumer_high_watermark(
    dre_consumer *c, const char *topic, int32_t partition, int64_t *high)
{
	int64_t lo = 0, hi = 0;

	if (c == NULL || c->rk == NULL
	    || rd_kafka_get_watermark_offsets(
	           c->rk, topic, partition, &lo, &hi)
	        != RD_KAFKA_RESP_ERR_NO_ERROR
	    || hi < 0)
		return false;
	*high = hi;
	return true;
}

dre_err
dre_consumer_poll(dre_consumer *c, int timeout_ms, dre_msg *m)
{
	if (c->last != NULL) {
		rd_kafka_message_destroy(c->last);
		c->last = NULL;
	}
	rd_kafka_message_t *rkm = rd_kafka_consumer_poll(c->rk, timeout_ms);
	if (rkm == NULL)
		return DRE_ETIMEOUT;
	c->last = rkm;
	memset(m, 0, sizeof(*m));
	m->topic = rkm->rkt ? rd_kafka_topic_name(rkm->rkt) : NULL;
	m->partition = rkm->partition;
	m->offset = rkm->offset;
	switch (rkm->err) {
	case RD_KAFKA_RESP_ERR_NO_ERROR:
		break;
	case RD_KAFKA_RESP_ERR__PARTITION_EOF:
		return DRE_ETIMEOUT;
	case RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE:
	case RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET:
		dre_warn("kafka: position of %s[%d] is gone (%s): recover "
		         "explicitly",
		    m->topic ? m->topic : "?", m->partition,
		    rd_kafka_message_errstr(rkm));
		return DRE_ENOTFOUND;
	default:
		dre_warn("kafka: consume %s[%d]: %s",
		    m->topic ? m->topic : "?", m->partition,
		    rd_kafka_message_errstr(rkm));
		return DRE_EBUS;
	}
	int64_t ts = rd_kafka_message_timestamp(rkm, NULL);
	m->key = rkm->key;
	m->key_len = rkm->key_len;
	m->payload = rkm->payload;
	m->len = rkm->len;
	m->timestamp_ms = ts;
	return DRE_OK;
}

void
dre_consumer_close(dre_consumer *c)
{
	if (c == NULL)
		return;
	if (c->last != NULL)
		rd_kafka_message_destroy(c->last);
	rd_kafka_consumer_close(c->rk);
	rd_kafka_destroy(c->rk);
	rd_kafka_topic_partition_list_destroy(c->assigned);
	free(c);
}
