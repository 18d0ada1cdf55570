// bus_int.h -- what bus.c shares with the other librdkafka users of common/.
#ifndef DRE_BUS_INT_H
#define DRE_BUS_INT_H

#include <librdkafka/rdkafka.h>

// dre_bus_log_cb routes librdkafka's own log lines into ours (set with
// rd_kafka_conf_set_log_cb on every client DRE creates).
void dre_bus_log_cb(
    const rd_kafka_t *rk, int level, const char *fac, const char *buf);

#endif
