// broker.c -- dre-broker: librdkafka's mock cluster on loopback as the
// embedded Kafka.
//
// Creates every topic of dre_topics[], publishes the bootstrap servers in a
// file (written atomically, removed on exit) and on stdout, and lets tests
// take brokers down and up over nng (broker.Down, broker.Up, broker.Status).
// The cluster lives in memory only: a restart is a new, empty cluster with a
// new cluster id, which consumers detect. With broker.port set, a restart
// listens on the same address, so running clients reconnect to the new
// cluster (what a real cluster rebuilt behind the same name looks like).
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "dre/config.h"
#include "dre/fs.h"
#include "dre/log.h"
#include "dre/rpc.h"
#include "dre/svc.h"
#include "dre/topics.h"
#include "listen.h"

#define MAX_BROKERS 16
#define MAX_PAD     256

typedef struct {
	dre_common_cfg common;
	int64_t        count;
	int64_t        port;
	char          *bootstrap_file;
	bool           topics;
	int64_t        partitions;
} broker_cfg;

static const dre_cfg_opt broker_opts[] = {
	DRE_CFG_COMMON(broker_cfg, common, "tcp://127.0.0.1:7001"),
	{ "broker.count", DRE_CFG_INT, offsetof(broker_cfg, count), "1",
	    "number of mock brokers (1-16)", DRE_CFG_RANGE(1, 16) },
	{ "broker.port", DRE_CFG_INT, offsetof(broker_cfg, port), "0",
	    "port of broker 1 on 127.0.0.1, broker n on port + n - 1 (0 = "
	    "ports chosen by the kernel, different after each start)",
	    DRE_CFG_RANGE(0, 65535) },
	{ "broker.bootstrap_file", DRE_CFG_STR,
	    offsetof(broker_cfg, bootstrap_file), NULL,
	    "file receiving the bootstrap servers (default "
	    "<data_dir>/broker/bootstrap)" },
	{ "broker.topics", DRE_CFG_BOOL, offsetof(broker_cfg, topics), "true",
	    "create every DRE topic at start (false = an empty cluster, as a "
	    "real one before dre-topics ran)" },
	{ "broker.partitions", DRE_CFG_INT, offsetof(broker_cfg, partitions),
	    "0",
	    "create every topic with at least this many partitions (0 = as "
	    "declared): a cluster whose operator made topics wider than "
	    "DRE declares them",
	    DRE_CFG_RANGE(0, 256) },
	DRE_CFG_END,
};

typedef struct {
	rd_kafka_t              *rk; // owns the mock cluster's threads
	rd_kafka_mock_cluster_t *mc;
	int                      count;
	pthread_mutex_t          mu;
	bool                     up[MAX_BROKERS + 1]; // by broker id, 1-based
	void                    *pad[MAX_PAD]; // see spread_heap
	int                      npad;
} broker;

// write_atomic replaces path with text through a temporary file, so a
// reader never sees a partial bootstrap string.
static int
write_atomic(const char *path, const char *text)
{
	char *dir = strdup(path);
	if (dir == NULL)
		return -1;
	char *slash = strrchr(dir, '/');
	if (slash != NULL && slash != dir) {
		*slash = '\0';
		if (dre_mkdirs(dir) != 0) {
			free(dir);
			return -1;
		}
	}
	free(dir);
	size_t pl = strlen(path);
	char  *tmp = malloc(pl + 32);
	if (tmp == NULL)
		return -1;
	snprintf(tmp, pl + 32, "%s.tmp.%ld", path, (long) getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) {
		free(tmp);
		return -1;
	}
	size_t  n = strlen(text);
	ssize_t wr = write(fd, text, n);
	int     rc = (wr == (ssize_t) n && fsync(fd) == 0) ? 0 : -1;
	close(fd);
	if (rc == 0 && rename(tmp, path) != 0)
		rc = -1;
	if (rc != 0)
		unlink(tmp);
	free(tmp);
	return rc;
}

// set_state takes broker id (or -1 = all) down or up.
static void
set_state(broker *b, const dre_rpc_call *call, dre_rpc_reply *rep, bool up)
{
	const char *s = dre_rpc_param(call, "broker");
	char       *end = NULL;
	long        id = s && *s ? strtol(s, &end, 10) : -1;
	if (s && *s && (*end != '\0' || id == 0 || id < -1 || id > b->count)) {
		dre_rpc_reply_error(rep, 400, "INVALID_PARAMETER", "broker",
		    "broker must be 1..%d or -1 (all)", b->count);
		return;
	}
	pthread_mutex_lock(&b->mu);
	for (int i = 1; i <= b->count; i++) {
		if (id != -1 && i != id)
			continue;
		rd_kafka_resp_err_t err = up
		    ? rd_kafka_mock_broker_set_up(b->mc, i)
		    : rd_kafka_mock_broker_set_down(b->mc, i);
		if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
			pthread_mutex_unlock(&b->mu);
			dre_error("broker %d %s: %s", i, up ? "up" : "down",
			    rd_kafka_err2str(err));
			dre_rpc_reply_error(rep, 500, "INTERNAL", "broker",
			    "broker %d: %s", i, rd_kafka_err2str(err));
			return;
		}
		b->up[i] = up;
		dre_info("broker %d %s", i, up ? "up" : "down");
	}
	pthread_mutex_unlock(&b->mu);
}

static void
status(broker *b, dre_rpc_reply *rep)
{
	dre_rpc_reply_json(rep);
	dre_buf_printf(&rep->body, "{\"bootstrap\":\"%s\",\"brokers\":[",
	    rd_kafka_mock_cluster_bootstraps(b->mc));
	pthread_mutex_lock(&b->mu);
	for (int i = 1; i <= b->count; i++)
		dre_buf_printf(&rep->body, "%s{\"id\":%d,\"up\":%s}",
		    i > 1 ? "," : "", i, b->up[i] ? "true" : "false");
	pthread_mutex_unlock(&b->mu);
	dre_buf_puts(&rep->body, "]}");
}

static void
on_down(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	set_state(svc, call, rep, false);
	if (rep->status == 200)
		status(svc, rep);
}

static void
on_up(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	set_state(svc, call, rep, true);
	if (rep->status == 200)
		status(svc, rep);
}

static void
on_status(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	status(svc, rep);
}

static const dre_rpc_route routes[] = {
	{ "broker.Down", on_down },
	{ "broker.Up", on_up },
	{ "broker.Status", on_status },
	{ NULL, NULL },
};

// kafka_log routes librdkafka's lines into ours. The hosting client has no
// bootstrap servers of its own, so its warning about that is noise.
static void
kafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	if (strcmp(fac, "CONFWARN") == 0)
		return;
	dre_log(level <= 3   ? DRE_LOG_ERROR
	        : level == 4 ? DRE_LOG_WARN
	                     : DRE_LOG_INFO,
	    "kafka %s: %s", fac, buf);
}

// spread_heap makes the next mock cluster object land at a random address.
// librdkafka 2.0.2 makes the mock cluster's id of that address; where the
// heap is not randomised (ASan's allocator) every start would present the
// same id, and clients would take a new, empty cluster for the old one. A
// random number of blocks of the cluster object's size (learnt from a
// throwaway cluster), kept until the cluster closes, moves it.
static void
spread_heap(broker *b)
{
	char             errstr[256];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_conf_set_log_cb(conf, kafka_log);
	rd_kafka_t *rk
	    = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (rk == NULL) {
		rd_kafka_conf_destroy(conf);
		return;
	}
	rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, 1);
	size_t size = mc != NULL ? malloc_usable_size(mc) : 0;
	if (mc != NULL)
		rd_kafka_mock_cluster_destroy(mc);
	rd_kafka_destroy(rk);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	unsigned seed = (unsigned) getpid() ^ (unsigned) ts.tv_nsec;
	int      n = size > 0 ? 1 + rand_r(&seed) % (MAX_PAD - 1) : 0;
	for (b->npad = 0; b->npad < n; b->npad++)
		if ((b->pad[b->npad] = malloc(size)) == NULL)
			break;
}

// cluster_open starts count mock brokers and creates every DRE topic.
static dre_err
cluster_open(
    broker *b, const dre_kvlist *props, int port, bool topics, int partitions)
{
	char             errstr[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_conf_set_log_cb(conf, kafka_log);
	for (size_t i = 0; props && i < props->n; i++)
		if (rd_kafka_conf_set(conf, props->keys[i], props->vals[i],
		        errstr, sizeof(errstr))
		    != RD_KAFKA_CONF_OK) {
			dre_error("kafka.%s: %s", props->keys[i], errstr);
			rd_kafka_conf_destroy(conf);
			return DRE_ECONFIG;
		}
	spread_heap(b);
	b->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (b->rk == NULL) {
		rd_kafka_conf_destroy(conf);
		dre_error("kafka: %s", errstr);
		return DRE_EBUS;
	}
	conf = NULL; // now owned by b->rk
	// The brokers' listeners are bound while the cluster is created.
	listen_ports_from(port);
	b->mc = rd_kafka_mock_cluster_new(b->rk, b->count);
	listen_ports_from(0);
	if (b->mc == NULL) {
		dre_error("cannot start the mock cluster");
		return DRE_EBUS;
	}
	// The mock cluster replicates in name only; a factor up to 3 makes
	// followers exist so that taking one broker down means something.
	int rf = b->count < 3 ? b->count : 3;
	// The listeners are open already: a client that reconnects at once
	// (a restart on the same port) would make the cluster auto-create a
	// topic with its default partition count before ours. So the brokers
	// refuse connections until the topics exist. A topic created in the
	// instant before is left as it is (it exists, which is all a client
	// needs).
	rd_kafka_mock_broker_set_down(b->mc, -1);
	for (const dre_topic *t = dre_topics; topics && t->name != NULL; t++) {
		rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(b->mc,
		    t->name,
		    t->partitions > partitions ? t->partitions : partitions,
		    rf);
		if (err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
			dre_warn("topic %s was created by a client's request "
			         "first (default partition count)",
			    t->name);
		else if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
			dre_error("create topic %s: %s", t->name,
			    rd_kafka_err2str(err));
			return DRE_EBUS;
		}
	}
	rd_kafka_mock_broker_set_up(b->mc, -1);
	for (int i = 1; i <= b->count; i++)
		b->up[i] = true;
	return DRE_OK;
}

static void
cluster_close(broker *b)
{
	if (b->mc != NULL)
		rd_kafka_mock_cluster_destroy(b->mc);
	if (b->rk != NULL)
		rd_kafka_destroy(b->rk);
	b->mc = NULL;
	b->rk = NULL;
	while (b->npad > 0)
		free(b->pad[--b->npad]);
}

int
main(int argc, char **argv)
{
	broker_cfg cfg;
	memset(&cfg, 0, sizeof(cfg));
	dre_svc_init("broker", &cfg, broker_opts, &cfg.common, argc, argv);
	int status_code = 1;

	broker b;
	memset(&b, 0, sizeof(b));
	pthread_mutex_init(&b.mu, NULL);
	if (cfg.count < 1 || cfg.count > MAX_BROKERS || cfg.port < 0
	    || cfg.port + cfg.count > 65536) {
		dre_error("broker.count must be 1..%d, broker.port 0..%d",
		    MAX_BROKERS, (int) (65536 - cfg.count));
		dre_config_free(&cfg, broker_opts, &cfg.common.kafka);
		return 2;
	}
	b.count = (int) cfg.count;

	char *path = NULL;
	if (cfg.bootstrap_file != NULL && *cfg.bootstrap_file != '\0') {
		path = strdup(cfg.bootstrap_file);
	} else {
		char *dir = dre_svc_path(&cfg.common, "broker");
		if (dir != NULL) {
			size_t n = strlen(dir) + sizeof("/bootstrap");
			path = malloc(n);
			if (path != NULL)
				snprintf(path, n, "%s/bootstrap", dir);
			free(dir);
		}
	}
	dre_rpc_server *srv = NULL;
	if (path == NULL) {
		dre_error("out of memory");
		goto out;
	}
	if (cluster_open(&b, &cfg.common.kafka, (int) cfg.port, cfg.topics,
	        (int) cfg.partitions)
	    != DRE_OK)
		goto out;
	const char *servers = rd_kafka_mock_cluster_bootstraps(b.mc);
	if (dre_rpc_server_open(&srv, cfg.common.rpc_listen, routes, &b, 2)
	    != DRE_OK) {
		dre_error("cannot serve %s", cfg.common.rpc_listen);
		goto out;
	}
	// Published last: the file's presence means the broker is ready.
	if (write_atomic(path, servers) != 0) {
		dre_error("cannot write %s: %s", path, strerror(errno));
		goto out;
	}
	printf("bootstrap=%s\n", servers);
	fflush(stdout);
	dre_info("mock cluster of %d broker(s) at %s, %s; control %s", b.count,
	    servers, path, cfg.common.rpc_listen);

	dre_svc_wait(-1);
	unlink(path);
	status_code = 0;
out:
	dre_rpc_server_close(srv);
	cluster_close(&b);
	pthread_mutex_destroy(&b.mu);
	free(path);
	dre_config_free(&cfg, broker_opts, &cfg.common.kafka);
	return status_code;
}
