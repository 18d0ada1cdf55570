// config.h -- one struct per service, filled from a table of options.
//
// Precedence, lowest first: the table's defaults, the config file
// (--config FILE or DRE_CONFIG; lines "name = value", '#' comments), the
// environment (DRE_<NAME> with '.' as '_', upper case: http.port ->
// DRE_HTTP_PORT), then the command line (-o name=value or --name=value).
// Keys starting with "kafka." are not in the table: they are collected
// verbatim (without the prefix) for rd_kafka_conf_set.
#ifndef DRE_CONFIG_H
#define DRE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "dre/err.h"

typedef enum {
	DRE_CFG_STR, // char * (owned by the struct; freed by dre_config_free)
	DRE_CFG_INT, // int64_t
	DRE_CFG_BOOL, // bool: true/false/1/0/yes/no/on/off
} dre_cfg_type;

typedef struct {
	const char  *name;
	dre_cfg_type type;
	size_t       offset;
	const char  *def; // default as text; NULL = empty string / 0 / false
	const char  *help;
	// A string's allowed values, '|'-separated (NULL = any), and an
	// integer's bounds (used when min < max). A value outside them is a
	// configuration error at start-up, so mains check nothing by hand.
	const char *choices;
	int64_t     min, max;
} dre_cfg_opt;

// Append to a row: DRE_CFG_RANGE(1, 65535) or DRE_CFG_CHOICES("a|b").
#define DRE_CFG_RANGE(lo, hi) NULL, (lo), (hi)
#define DRE_CFG_CHOICES(list) (list), 0, 0
// A duration or count that must be at least 1 / at least 0.
#define DRE_CFG_POSITIVE    DRE_CFG_RANGE(1, INT64_MAX)
#define DRE_CFG_NONNEGATIVE DRE_CFG_RANGE(0, INT64_MAX)

#define DRE_CFG_END                                                           \
	{                                                                     \
		NULL, DRE_CFG_STR, 0, NULL, NULL, NULL, 0, 0                  \
	}

// Key/value list of pass-through properties (kafka.*).
typedef struct {
	char **keys;
	char **vals;
	size_t n;
} dre_kvlist;

void        dre_kvlist_set(dre_kvlist *l, const char *key, const char *val);
const char *dre_kvlist_get(const dre_kvlist *l, const char *key);
void        dre_kvlist_free(dre_kvlist *l);

// Options every service has; embed as the first member of a service config
// and list DRE_CFG_COMMON(struct_type, member) in its table.
typedef struct {
	char      *data_dir; // state lives under <data_dir>/<service>
	char      *log_level;
	char      *log_format; // text | json
	char      *rpc_listen; // nng URL of this service's REP socket
	char      *instance_id;
	char      *events_format; // single-object | confluent
	char      *registry_url; // schema registry (events.format=confluent)
	char      *internal_key; // 64 hex digits (DRE_INTERNAL_KEY)
	char      *internal_key_file; // "" = <data_dir>/internal.key
	int64_t    fetch_wait_ms; // consumers' fetch.wait.max.ms
	bool       sched_batch; // every thread under SCHED_BATCH
	dre_kvlist kafka; // kafka.* pass-through
} dre_common_cfg;

#define DRE_CFG_COMMON(T, m, rpc_default)                                     \
	{ "data_dir", DRE_CFG_STR, offsetof(T, m.data_dir), "./var",          \
		"directory for all state" },                                  \
	    { "log_level", DRE_CFG_STR, offsetof(T, m.log_level), "info",     \
		    "how much is logged",                                     \
		    DRE_CFG_CHOICES("debug|info|warn|error") },               \
	    { "log.format", DRE_CFG_STR, offsetof(T, m.log_format), "text",   \
		    "log line format: text (for people) or json (one object " \
		    "per line: ts, level, service, msg, request_id)",         \
		    DRE_CFG_CHOICES("text|json") },                           \
	    { "rpc.listen", DRE_CFG_STR, offsetof(T, m.rpc_listen),           \
		    rpc_default,                                              \
		    "nng URL of the service's request/reply socket" },        \
	    { "instance_id", DRE_CFG_STR, offsetof(T, m.instance_id),         \
		    "STORE-001", "instance identifier shown in responses" },  \
	    { "events.format", DRE_CFG_STR, offsetof(T, m.events_format),     \
		    "single-object",                                          \
		    "wire format of produced events: Avro single-object "     \
		    "encoding, or confluent (0x00 + schema-registry id + "    \
		    "Avro; schemas registered at start with "                 \
		    "events.registry_url); both are read",                    \
		    DRE_CFG_CHOICES("single-object|confluent") },             \
	    { "events.registry_url", DRE_CFG_STR,                             \
		    offsetof(T, m.registry_url), NULL,                        \
		    "schema registry base URL (http or https; "               \
		    "events.format=confluent)" },                             \
	    { "events.fetch_wait_ms", DRE_CFG_INT,                            \
		    offsetof(T, m.fetch_wait_ms), "100",                      \
		    "longest wait of a consumer's fetch in the broker when "  \
		    "nothing is new (fetch.wait.max.ms): a Kafka broker "     \
		    "answers as soon as an event arrives; the embedded "      \
		    "dre-broker holds the fetch for the whole wait, so "      \
		    "tools/stack sets 5",                                     \
		    DRE_CFG_RANGE(1, 10000) },                                \
	    { "sched.batch", DRE_CFG_BOOL, offsetof(T, m.sched_batch),        \
		    "true",                                                   \
		    "run every thread under SCHED_BATCH: a woken thread (a "  \
		    "request's next step) does not preempt the running one, " \
		    "which finishes its own step first; fewer context "       \
		    "switches per request where DRE's processes share "       \
		    "cores (false: the policy the process was started with, " \
		    "e.g. by chrt)" },                                        \
	    { "internal.key", DRE_CFG_STR, offsetof(T, m.internal_key), "",   \
		    "the deployment's internal key (64 hex digits) proving "  \
		    "calls between DRE processes; better given as "           \
		    "DRE_INTERNAL_KEY or in internal.key_file" },             \
	{                                                                     \
		"internal.key_file", DRE_CFG_STR,                             \
		    offsetof(T, m.internal_key_file), "",                     \
		    "file holding the internal key (64 hex digits); empty = " \
		    "<data_dir>/internal.key"                                 \
	}

// dre_config_load fills cfg from table and argv (argv[0] skipped). kafka
// receives the kafka.* keys. Returns DRE_ECONFIG with a message logged on an
// unknown key, a bad value or an unreadable file. "--help" prints the table
// and exits 0; "--version" prints the program's name and DRE_VERSION
// (dre/version.h) and exits 0.
dre_err dre_config_load(void *cfg, const dre_cfg_opt *table, dre_kvlist *kafka,
    int argc, char **argv);
// dre_config_print writes the effective configuration, one "name = value"
// line per table row then the kafka.* keys, to f. Secrets (auth.users,
// *.key such as internal.key, any key naming a password or secret) are
// written as "<set>" or "".
void dre_config_print(FILE *f, const void *cfg, const dre_cfg_opt *table,
    const dre_kvlist *kafka);
// dre_config_nng_url_ok reports whether url is a dialable/listenable nng URL
// (tcp://host:port, tls+tcp://host:port, ipc://path or inproc://name).
bool dre_config_nng_url_ok(const char *url);
// dre_config_free frees the strings the table put into cfg and the kvlist.
void dre_config_free(void *cfg, const dre_cfg_opt *table, dre_kvlist *kafka);

#endif
