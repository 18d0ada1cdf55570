// busmock.h -- an in-process librdkafka mock cluster for unit tests.
#ifndef DRE_BUSMOCK_H
#define DRE_BUSMOCK_H

#include <stdbool.h>
#include <stdint.h>

#include "dre/err.h"

// An in-process librdkafka mock cluster on loopback with every topic of
// dre_topics[] created: for tests that need a broker without a process.
typedef struct dre_bus_mock dre_bus_mock;
// dre_bus_mock_open starts `brokers` mock brokers (ids 1..brokers). Caller
// closes with dre_bus_mock_close().
dre_err dre_bus_mock_open(dre_bus_mock **mp, int brokers);
// dre_bus_mock_bootstrap returns the bootstrap.servers string; borrowed
// until close.
const char *dre_bus_mock_bootstrap(const dre_bus_mock *m);
// dre_bus_mock_topic_create creates topic with partitions partitions (a
// topic the table does not declare, or one created later).
dre_err dre_bus_mock_topic_create(
    dre_bus_mock *m, const char *topic, int partitions);
// dre_bus_mock_set_up takes broker id (-1 = all) up or down.
dre_err dre_bus_mock_set_up(dre_bus_mock *m, int32_t broker, bool up);
void    dre_bus_mock_close(dre_bus_mock *m);

#endif
