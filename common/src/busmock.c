// busmock.c -- an in-process librdkafka mock cluster with every topic of
// dre_topics[] created, for unit tests that need a broker without a process.
#include <stdlib.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "bus_int.h"
#include "dre/busmock.h"
#include "dre/log.h"
#include "dre/topics.h"

struct dre_bus_mock {
	rd_kafka_t              *rk; // hosts the cluster's threads
	rd_kafka_mock_cluster_t *mc;
	int                      brokers;
};

dre_err
dre_bus_mock_open(dre_bus_mock **mp, int brokers)
{
	char             errstr[256];
	dre_bus_mock    *m = calloc(1, sizeof(*m));
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	if (m == NULL) {
		rd_kafka_conf_destroy(conf);
		return DRE_ENOMEM;
	}
	rd_kafka_conf_set_log_cb(conf, dre_bus_log_cb);
	m->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (m->rk == NULL) {
		rd_kafka_conf_destroy(conf);
		dre_error("kafka mock: %s", errstr);
		free(m);
		return DRE_EBUS;
	}
	m->brokers = brokers;
	m->mc = rd_kafka_mock_cluster_new(m->rk, brokers);
	if (m->mc == NULL) {
		dre_bus_mock_close(m);
		return DRE_EBUS;
	}
	int rf = brokers < 3 ? brokers : 3;
	for (const dre_topic *t = dre_topics; t->name != NULL; t++)
		if (rd_kafka_mock_topic_create(
		        m->mc, t->name, t->partitions, rf)
		    != RD_KAFKA_RESP_ERR_NO_ERROR) {
			dre_bus_mock_close(m);
			return DRE_EBUS;
		}
	*mp = m;
	return DRE_OK;
}

const char *
dre_bus_mock_bootstrap(const dre_bus_mock *m)
{
	return rd_kafka_mock_cluster_bootstraps(m->mc);
}

dre_err
dre_bus_mock_topic_create(dre_bus_mock *m, const char *topic, int partitions)
{
	int rf = m->brokers < 3 ? m->brokers : 3;
	return rd_kafka_mock_topic_create(m->mc, topic, partitions, rf)
	        == RD_KAFKA_RESP_ERR_NO_ERROR
	    ? DRE_OK
	    : DRE_EBUS;
}

dre_err
dre_bus_mock_set_up(dre_bus_mock *m, int32_t broker, bool up)
{
	for (int32_t i = 1; i <= m->brokers; i++) {
		if (broker != -1 && broker != i)
			continue;
		rd_kafka_resp_err_t err = up
		    ? rd_kafka_mock_broker_set_up(m->mc, i)
		    : rd_kafka_mock_broker_set_down(m->mc, i);
		if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
			return DRE_EBUS;
	}
	return DRE_OK;
}

void
dre_bus_mock_close(dre_bus_mock *m)
{
	if (m == NULL)
		return;
	if (m->mc != NULL)
		rd_kafka_mock_cluster_destroy(m->mc);
	rd_kafka_destroy(m->rk);
	free(m);
}
