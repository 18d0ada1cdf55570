// topics.c -- dre-topics: creates every topic of dre_topics[] (common/
// src/topics.c: partitions, retention.ms, cleanup.policy) on a Kafka cluster
// through librdkafka's Admin API, then compares each topic's configuration
// with the table (DescribeConfigs).
//
// Idempotent: a topic that exists already is left as it is ("exists"). A
// topic with fewer partitions than the table, or another configuration, is
// reported ("differs: ...") and makes the exit status 1, so a deployment job
// notices drift; one with more partitions is reported as "wider" (every
// consumer reads the partitions the cluster has); dre-topics never deletes
// or alters a topic. Exit 2 on a configuration error, 1 when a topic could
// not be created.
//
// The dev broker (librdkafka's mock cluster) answers neither CreateTopics
// nor DescribeConfigs: dre-broker creates the topics itself, and dre-topics
// fails against it with "CreateTopics: ..." (exit 1).
//
// Settings as every DRE binary (--help): kafka.bootstrap.servers (env
// DRE_KAFKA_BOOTSTRAP_SERVERS) and any kafka.* property.
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "dre/config.h"
#include "dre/log.h"
#include "dre/svc.h"
#include "dre/topics.h"

typedef struct {
	dre_common_cfg common;
	int64_t        replication;
	int64_t        timeout_ms;
	bool           verify;
	bool           plan;
} tp_cfg;

static const dre_cfg_opt tp_opts[] = {
	{ "log_level", DRE_CFG_STR, offsetof(tp_cfg, common.log_level), "info",
	    "how much is logged", DRE_CFG_CHOICES("debug|info|warn|error") },
	{ "topics.replication_factor", DRE_CFG_INT,
	    offsetof(tp_cfg, replication), "-1",
	    "replication factor of created topics (-1 = the broker's "
	    "default.replication.factor)",
	    DRE_CFG_RANGE(-1, 32767) },
	{ "topics.timeout_ms", DRE_CFG_INT, offsetof(tp_cfg, timeout_ms),
	    "30000", "deadline of each admin request", DRE_CFG_POSITIVE },
	{ "topics.verify", DRE_CFG_BOOL, offsetof(tp_cfg, verify), "true",
	    "compare partitions and configuration of every topic with the "
	    "table (DescribeConfigs)" },
	{ "topics.plan", DRE_CFG_BOOL, offsetof(tp_cfg, plan), "false",
	    "print the topics as they would be created, one line each, and "
	    "exit without connecting" },
	DRE_CFG_END,
};

// wait_result polls q for the admin result of type want (NULL on timeout).
static rd_kafka_event_t *
wait_result(rd_kafka_queue_t *q, rd_kafka_event_type_t want, int timeout_ms)
{
	for (;;) {
		rd_kafka_event_t *ev = rd_kafka_queue_poll(q, timeout_ms);
		if (ev == NULL)
			return NULL;
		if (rd_kafka_event_type(ev) == want)
			return ev;
		rd_kafka_event_destroy(ev);
	}
}

#define MAX_TOPICS 64
static char retention_text[MAX_TOPICS][24];

// create_all sends one CreateTopics for the whole table; prints one line per
// topic. Returns false when a topic could neither be created nor exists.
static bool
create_all(rd_kafka_t *rk, rd_kafka_queue_t *q, const tp_cfg *cfg)
{
	size_t n = 0;
	while (dre_topics[n].name != NULL && n < MAX_TOPICS)
		n++;
	rd_kafka_NewTopic_t **nt = calloc(n, sizeof(*nt));
	if (nt == NULL)
		return false;
	char errstr[256];
	bool ok = true;
	for (size_t i = 0; i < n; i++) {
		const dre_topic *t = &dre_topics[i];
		nt[i] = rd_kafka_NewTopic_new(t->name, t->partitions,
		    (int) cfg->replication, errstr, sizeof(errstr));
		if (nt[i] == NULL) {
			dre_error("%s: %s", t->name, errstr);
			ok = false;
			goto out;
		}
		snprintf(retention_text[i], sizeof(retention_text[i]),
		    "%" PRId64, t->retention_ms);
		rd_kafka_NewTopic_set_config(
		    nt[i], "retention.ms", retention_text[i]);
		rd_kafka_NewTopic_set_config(
		    nt[i], "cleanup.policy", t->cleanup);
	}
	rd_kafka_AdminOptions_t *ao
	    = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
	rd_kafka_AdminOptions_set_request_timeout(
	    ao, (int) cfg->timeout_ms, errstr, sizeof(errstr));
	rd_kafka_AdminOptions_set_operation_timeout(
	    ao, (int) cfg->timeout_ms, errstr, sizeof(errstr));
	rd_kafka_CreateTopics(rk, nt, n, ao, q);
	rd_kafka_AdminOptions_destroy(ao);
	rd_kafka_event_t *ev = wait_result(q,
	    RD_KAFKA_EVENT_CREATETOPICS_RESULT, (int) cfg->timeout_ms + 5000);
	if (ev == NULL) {
		dre_error("CreateTopics: no answer within %lld ms",
		    (long long) cfg->timeout_ms);
		ok = false;
		goto out;
	}
	if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
		dre_error("CreateTopics: %s", rd_kafka_event_error_string(ev));
		rd_kafka_event_destroy(ev);
		ok = false;
		goto out;
	}
	size_t                          nres;
	const rd_kafka_topic_result_t **res
	    = rd_kafka_CreateTopics_result_topics(
	        rd_kafka_event_CreateTopics_result(ev), &nres);
	for (size_t i = 0; i < nres; i++) {
		rd_kafka_resp_err_t e = rd_kafka_topic_result_error(res[i]);
		const char         *name = rd_kafka_topic_result_name(res[i]);
		if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
			printf("%s: created\n", name);
		} else if (e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
			printf("%s: exists\n", name);
		} else {
			printf("%s: failed: %s\n", name,
			    rd_kafka_topic_result_error_string(res[i])
			        ? rd_kafka_topic_result_error_string(res[i])
			        : rd_kafka_err2str(e));
			ok = false;
		}
	}
	rd_kafka_event_destroy(ev);
out:
	for (size_t i = 0; i < n; i++)
		if (nt[i] != NULL)
			rd_kafka_NewTopic_destroy(nt[i]);
	free(nt);
	fflush(stdout);
	return ok;
}

// check_partitions compares each topic's partition count (Metadata) with
// the table; returns the number of topics that are missing or narrower (a
// wider one is reported, not counted: consumers read what the cluster has).
static int
check_partitions(rd_kafka_t *rk, const tp_cfg *cfg)
{
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_resp_err_t             e
	    = rd_kafka_metadata(rk, 1, NULL, &md, (int) cfg->timeout_ms);
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
		dre_error("Metadata: %s", rd_kafka_err2str(e));
		return 1;
	}
	int bad = 0;
	for (const dre_topic *t = dre_topics; t->name != NULL; t++) {
		int parts = -1;
		for (int i = 0; i < md->topic_cnt; i++)
			if (strcmp(md->topics[i].topic, t->name) == 0
			    && md->topics[i].err == RD_KAFKA_RESP_ERR_NO_ERROR)
				parts = md->topics[i].partition_cnt;
		if (parts < 0) {
			printf("%s: differs: missing\n", t->name);
			bad++;
		} else if (parts < t->partitions) {
			printf("%s: differs: %d partitions, table says %d\n",
			    t->name, parts, t->partitions);
			bad++;
		} else if (parts > t->partitions) {
			// Every consumer reads the partitions the cluster has.
			printf(
			    "%s: wider: %d partitions, table says %d (fine: "
			    "every partition is read)\n",
			    t->name, parts, t->partitions);
		}
	}
	rd_kafka_metadata_destroy(md);
	fflush(stdout);
	return bad;
}

// check_configs compares retention.ms and cleanup.policy (DescribeConfigs)
// with the table; returns the number of differences, -1 when the cluster
// does not answer DescribeConfigs (reported, not counted as drift).
static int
check_configs(rd_kafka_t *rk, rd_kafka_queue_t *q, const tp_cfg *cfg)
{
	size_t n = 0;
	while (dre_topics[n].name != NULL)
		n++;
	rd_kafka_ConfigResource_t **cr = calloc(n, sizeof(*cr));
	if (cr == NULL)
		return 1;
	for (size_t i = 0; i < n; i++)
		cr[i] = rd_kafka_ConfigResource_new(
		    RD_KAFKA_RESOURCE_TOPIC, dre_topics[i].name);
	char                     errstr[256];
	rd_kafka_AdminOptions_t *ao
	    = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
	rd_kafka_AdminOptions_set_request_timeout(
	    ao, (int) cfg->timeout_ms, errstr, sizeof(errstr));
	rd_kafka_DescribeConfigs(rk, cr, n, ao, q);
	rd_kafka_AdminOptions_destroy(ao);
	rd_kafka_ConfigResource_destroy_array(cr, n);
	free(cr);
	rd_kafka_event_t *ev
	    = wait_result(q, RD_KAFKA_EVENT_DESCRIBECONFIGS_RESULT,
	        (int) cfg->timeout_ms + 5000);
	if (ev == NULL
	    || rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
		printf("configuration not compared: DescribeConfigs: %s\n",
		    ev ? rd_kafka_event_error_string(ev) : "no answer");
		if (ev != NULL)
			rd_kafka_event_destroy(ev);
		fflush(stdout);
		return -1;
	}
	size_t                            nres;
	const rd_kafka_ConfigResource_t **res
	    = rd_kafka_DescribeConfigs_result_resources(
	        rd_kafka_event_DescribeConfigs_result(ev), &nres);
	int bad = 0;
	for (size_t i = 0; i < nres; i++) {
		const char      *name = rd_kafka_ConfigResource_name(res[i]);
		const dre_topic *t = dre_topic_find(name);
		if (t == NULL)
			continue;
		if (rd_kafka_ConfigResource_error(res[i])
		    != RD_KAFKA_RESP_ERR_NO_ERROR) {
			printf("%s: configuration not compared: %s\n", name,
			    rd_kafka_ConfigResource_error_string(res[i]));
			continue;
		}
		char want[24];
		snprintf(want, sizeof(want), "%" PRId64, t->retention_ms);
		size_t                         ne;
		const rd_kafka_ConfigEntry_t **entries
		    = rd_kafka_ConfigResource_configs(res[i], &ne);
		for (size_t j = 0; j < ne; j++) {
			const char *k = rd_kafka_ConfigEntry_name(entries[j]);
			const char *v = rd_kafka_ConfigEntry_value(entries[j]);
			const char *w = strcmp(k, "retention.ms") == 0 ? want
			    : strcmp(k, "cleanup.policy") == 0 ? t->cleanup
			                                       : NULL;
			if (w != NULL && (v == NULL || strcmp(v, w) != 0)) {
				printf("%s: differs: %s is %s, table says "
				       "%s\n",
				    name, k, v ? v : "(unset)", w);
				bad++;
			}
		}
	}
	rd_kafka_event_destroy(ev);
	fflush(stdout);
	return bad;
}

int
main(int argc, char **argv)
{
	static tp_cfg cfg;
	char          errstr[512];
	int           rc = 1;

	dre_svc_init("topics", &cfg, tp_opts, &cfg.common, argc, argv);
	if (cfg.plan) {
		for (const dre_topic *t = dre_topics; t->name != NULL; t++)
			printf("%s partitions=%d replication.factor=%lld "
			       "retention.ms=%" PRId64 " cleanup.policy=%s\n",
			    t->name, t->partitions,
			    (long long) cfg.replication, t->retention_ms,
			    t->cleanup);
		dre_config_free(&cfg, tp_opts, &cfg.common.kafka);
		return 0;
	}
	if (dre_kvlist_get(&cfg.common.kafka, "bootstrap.servers") == NULL) {
		dre_error("kafka.bootstrap.servers is not set (env "
		          "DRE_KAFKA_BOOTSTRAP_SERVERS)");
		dre_config_free(&cfg, tp_opts, &cfg.common.kafka);
		return 2;
	}
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	for (size_t i = 0; i < cfg.common.kafka.n; i++)
		if (rd_kafka_conf_set(conf, cfg.common.kafka.keys[i],
		        cfg.common.kafka.vals[i], errstr, sizeof(errstr))
		    != RD_KAFKA_CONF_OK) {
			dre_error(
			    "kafka.%s: %s", cfg.common.kafka.keys[i], errstr);
			rd_kafka_conf_destroy(conf);
			dre_config_free(&cfg, tp_opts, &cfg.common.kafka);
			return 2;
		}
	rd_kafka_t *rk
	    = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (rk == NULL) {
		dre_error("kafka: %s", errstr);
		rd_kafka_conf_destroy(conf);
		dre_config_free(&cfg, tp_opts, &cfg.common.kafka);
		return 2;
	}
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	if (create_all(rk, q, &cfg)) {
		rc = 0;
		if (cfg.verify) {
			int bad = check_partitions(rk, &cfg);
			int cb = check_configs(rk, q, &cfg);
			if (bad > 0 || cb > 0)
				rc = 1;
		}
	}
	rd_kafka_queue_destroy(q);
	rd_kafka_destroy(rk);
	dre_config_free(&cfg, tp_opts, &cfg.common.kafka);
	printf("topics: %s\n", rc == 0 ? "OK" : "FAILED");
	return rc;
}
