// events.c -- dre-events: prints the events of a DRE topic as JSON lines,
// decoded with nothing but the .avsc files of a directory (or a schema
// registry).
//
//   dre-events -b BOOTSTRAP -t TOPIC [-s SCHEMA_DIR] [-r REGISTRY_URL]
//              [-p PARTITION] [-o beginning|end|OFFSET] [-f] [-j] [-w WAIT_MS]
//
// Reads every partition of TOPIC (or only -p PARTITION) from the beginning
// (or -o: the end, or an offset) to its current end -- or, with -f, follows
// it until SIGINT/SIGTERM -- and prints one line per message:
// {"topic","partition","offset","timestamp","timestampType","key","schema",
// "value"} (the Kafka timestamp in epoch ms, when the message has one;
// "schemaId" too for a Confluent-framed value), or with -j the decoded
// value alone. A single-object encoded value's writer schema is found by
// the CRC-64-AVRO fingerprint in its header among the schema files of
// SCHEMA_DIR (default:
// proto/ next to the binary's source tree); a Confluent-framed value's
// (0x00 + schema id, events.format=confluent) is fetched from the registry
// (GET REGISTRY_URL/schemas/ids/<id>). The code never uses the schemas
// compiled into DRE. This is what an outside consumer does, and how the
// tests show that every event can be read with the files in proto/ (or the
// registry) alone.
#include <curl/curl.h>
#include <dirent.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <avro.h>
#include <librdkafka/rdkafka.h>

#include "dre/arena.h"
#include "dre/avro.h"
#include "dre/buf.h"
#include "dre/json.h"

#define MAX_SCHEMAS 64

typedef struct {
	char                name[256];
	uint64_t            fp;
	avro_schema_t       schema;
	avro_value_iface_t *iface;
	int64_t             id; // registry id; -1 = a file of SCHEMA_DIR
} schema_file;

static schema_file           schemas[MAX_SCHEMAS];
static int                   nschemas;
static const char           *registry;
static volatile sig_atomic_t stop;

static void
on_signal(int sig)
{
	(void) sig;
	stop = 1;
}

static char *
slurp(const char *path, size_t *lenp)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	dre_buf b = { 0 };
	char    chunk[4096];
	size_t  n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		dre_buf_append(&b, chunk, n);
	fclose(f);
	*lenp = b.len;
	return dre_buf_take(&b, lenp);
}

// load_schemas parses every *.avsc of dir and computes its fingerprint
// from the Parsing Canonical Form (Avro specification).
static int
load_schemas(const char *dir)
{
	DIR *d = opendir(dir);
	if (d == NULL) {
		fprintf(stderr, "dre-events: cannot open %s\n", dir);
		return -1;
	}
	struct dirent *e;
	while ((e = readdir(d)) != NULL && nschemas < MAX_SCHEMAS) {
		size_t l = strlen(e->d_name);
		if (l < 6 || strcmp(e->d_name + l - 5, ".avsc") != 0)
			continue;
		char path[4096];
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		size_t len = 0;
		char  *json = slurp(path, &len);
		if (json == NULL)
			continue;
		schema_file *s = &schemas[nschemas];
		dre_buf      canon = { 0 };
		if (dre_avro_canonical(&canon, json, len) != DRE_OK
		    || avro_schema_from_json_length(json, len, &s->schema)) {
			fprintf(
			    stderr, "dre-events: %s is not a schema\n", path);
			free(json);
			dre_buf_free(&canon);
			continue;
		}
		s->fp = dre_avro_crc64(canon.data, canon.len);
		s->id = -1;
		s->iface = avro_generic_class_from_schema(s->schema);
		snprintf(s->name, sizeof(s->name), "%s%s%s",
		    avro_schema_namespace(s->schema)
		        ? avro_schema_namespace(s->schema)
		        : "",
		    avro_schema_namespace(s->schema) ? "." : "",
		    avro_schema_name(s->schema));
		dre_buf_free(&canon);
		free(json);
		nschemas++;
	}
	closedir(d);
	return nschemas > 0 ? 0 : -1;
}

static void
json_str(FILE *out, const char *s, size_t n)
{
	dre_buf b = { 0 };
	fputc('"', out);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char) s[i];
		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c < 0x20)
			fprintf(out, "\\u%04x", c);
		else
			fputc(c, out);
	}
	fputc('"', out);
	dre_buf_free(&b);
}

static size_t
collect(char *data, size_t size, size_t n, void *arg)
{
	dre_buf *b = arg;
	dre_buf_append(b, data, size * n);
	return b->oom ? 0 : size * n;
}

// registry_schema returns the schema of registry id (fetched once with GET
// <registry>/schemas/ids/<id>), NULL when it cannot be had.
static schema_file *
registry_schema(int64_t id)
{
	for (int i = 0; i < nschemas; i++)
		if (schemas[i].id == id)
			return &schemas[i];
	if (registry == NULL || nschemas >= MAX_SCHEMAS)
		return NULL;
	char url[2048];
	snprintf(
	    url, sizeof(url), "%s/schemas/ids/%lld", registry, (long long) id);
	dre_buf answer = { 0 };
	CURL   *c = curl_easy_init();
	long    status = 0;
	if (c == NULL)
		return NULL;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &answer);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	CURLcode rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	schema_file *s = NULL;
	dre_arena   *a = dre_arena_alloc(0);
	dre_json    *root = NULL;
	if (rc == CURLE_OK && status == 200 && a != NULL && answer.len > 0
	    && dre_json_parse(&root, a, answer.data, answer.len, 4, NULL)
	        == DRE_OK) {
		const dre_json *js = dre_json_get(root, "schema");
		schema_file    *n = &schemas[nschemas];
		if (dre_json_is(js, DRE_JSON_STRING)
		    && avro_schema_from_json_length(
		           js->str, js->len, &n->schema)
		        == 0) {
			n->iface = avro_generic_class_from_schema(n->schema);
			n->id = id;
			n->fp = 0;
			snprintf(n->name, sizeof(n->name), "%s%s%s",
			    avro_schema_namespace(n->schema)
			        ? avro_schema_namespace(n->schema)
			        : "",
			    avro_schema_namespace(n->schema) ? "." : "",
			    avro_schema_name(n->schema));
			nschemas++;
			s = n;
		}
	}
	if (s == NULL)
		fprintf(stderr, "dre-events: %s: %s HTTP %ld\n", url,
		    rc == CURLE_OK ? "" : curl_easy_strerror(rc), status);
	dre_arena_free(a);
	dre_buf_free(&answer);
	return s;
}

// print_value decodes one value: single-object encoded (schema by
// fingerprint) or Confluent-framed (schema by registry id).
static void
print_value(FILE *out, const uint8_t *p, size_t len, bool value_only)
{
	schema_file *s = NULL;
	size_t       hl = 0;
	if (len >= 10 && p[0] == 0xC3 && p[1] == 0x01) {
		uint64_t fp = 0;
		for (int i = 0; i < 8; i++)
			fp |= (uint64_t) p[2 + i] << (8 * i);
		for (int i = 0; i < nschemas && s == NULL; i++)
			if (schemas[i].fp == fp && schemas[i].id < 0)
				s = &schemas[i];
		hl = 10;
		if (s == NULL) {
			fprintf(out,
			    value_only ? "null"
			               : "\"schema\":null,\"value\":null,"
			                 "\"error\":\"unknown fingerprint "
			                 "%016llx\"",
			    (unsigned long long) fp);
			return;
		}
	} else if (len >= 5 && p[0] == 0x00) {
		int64_t id = (int64_t) ((uint32_t) p[1] << 24
		    | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 8 | p[4]);
		s = registry_schema(id);
		hl = 5;
		if (!value_only)
			fprintf(out, "\"schemaId\":%lld,", (long long) id);
		if (s == NULL) {
			fprintf(out,
			    value_only
			        ? "null"
			        : "\"schema\":null,\"value\":null,"
			          "\"error\":\"schema id %lld not in the "
			          "registry (-r REGISTRY_URL)\"",
			    (long long) id);
			return;
		}
	} else {
		fputs(value_only ? "null"
		                 : "\"schema\":null,\"value\":null,\"error\":"
		                   "\"not Avro single-object encoding\"",
		    out);
		return;
	}
	avro_value_t  v;
	avro_reader_t r
	    = avro_reader_memory((const char *) p + hl, (int64_t) (len - hl));
	avro_generic_value_new(s->iface, &v);
	char *json = NULL;
	if (avro_value_read(r, &v) != 0
	    || avro_value_to_json(&v, 1, &json) != 0) {
		if (value_only)
			fputs("null", out);
		else
			fprintf(out,
			    "\"schema\":\"%s\",\"value\":null,\"error\":"
			    "\"undecodable\"",
			    s->name);
	} else if (value_only) {
		fputs(json, out);
	} else {
		fprintf(out, "\"schema\":\"%s\",\"value\":%s", s->name, json);
	}
	free(json);
	avro_value_decref(&v);
	avro_reader_free(r);
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: dre-events -b BOOTSTRAP -t TOPIC [-s SCHEMA_DIR] "
	    "[-r REGISTRY_URL]\n"
	    "                  [-p PARTITION] [-o beginning|end|OFFSET] [-f] "
	    "[-j] [-w WAIT_MS]\n"
	    "  -f  follow: keep reading new events until SIGINT/SIGTERM\n"
	    "  -j  print each decoded value alone, one JSON object a line\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	const char *bootstrap = NULL, *topic = NULL;
	const char *dir = DRE_PROTO_DIR;
	int         wait_ms = 10000, c, partition = -1;
	int64_t     start = RD_KAFKA_OFFSET_BEGINNING;
	bool        follow = false, value_only = false;
	char       *end;
	while ((c = getopt(argc, argv, "b:t:s:w:r:p:o:fj")) != -1) {
		switch (c) {
		case 'r':
			registry = optarg;
			break;
		case 'p':
			partition = (int) strtol(optarg, &end, 10);
			if (*optarg == '\0' || *end != '\0' || partition < 0)
				usage();
			break;
		case 'o':
			if (strcmp(optarg, "beginning") == 0) {
				start = RD_KAFKA_OFFSET_BEGINNING;
			} else if (strcmp(optarg, "end") == 0) {
				start = RD_KAFKA_OFFSET_END;
			} else {
				start = strtoll(optarg, &end, 10);
				if (*optarg == '\0' || *end != '\0'
				    || start < 0)
					usage();
			}
			break;
		case 'f':
			follow = true;
			break;
		case 'j':
			value_only = true;
			break;
		case 'b':
			bootstrap = optarg;
			break;
		case 't':
			topic = optarg;
			break;
		case 's':
			dir = optarg;
			break;
		case 'w':
			wait_ms = atoi(optarg);
			break;
		default:
			usage();
		}
	}
	if (bootstrap == NULL || topic == NULL)
		usage();
	if (load_schemas(dir) != 0)
		return 1;

	char             err[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	if (rd_kafka_conf_set(
	        conf, "bootstrap.servers", bootstrap, err, sizeof(err))
	        != RD_KAFKA_CONF_OK
	    || rd_kafka_conf_set(
	           conf, "group.id", "dre-events", err, sizeof(err))
	        != RD_KAFKA_CONF_OK
	    || rd_kafka_conf_set(
	           conf, "enable.partition.eof", "true", err, sizeof(err))
	        != RD_KAFKA_CONF_OK
	    || rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err))
	        != RD_KAFKA_CONF_OK) {
		fprintf(stderr, "dre-events: %s\n", err);
		return 1;
	}
	rd_kafka_t *rk
	    = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
	if (rk == NULL) {
		fprintf(stderr, "dre-events: %s\n", err);
		return 1;
	}
	rd_kafka_poll_set_consumer(rk);
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
	if (rd_kafka_metadata(rk, 0, rkt, &md, wait_ms)
	        != RD_KAFKA_RESP_ERR_NO_ERROR
	    || md->topic_cnt != 1 || md->topics[0].err) {
		fprintf(stderr, "dre-events: no metadata for %s\n", topic);
		return 1;
	}
	int np = md->topics[0].partition_cnt;
	if (partition >= np) {
		fprintf(
		    stderr, "dre-events: %s has %d partitions\n", topic, np);
		return 2;
	}
	rd_kafka_topic_partition_list_t *l
	    = rd_kafka_topic_partition_list_new(np);
	for (int i = 0; i < np; i++)
		if (partition < 0 || i == partition)
			rd_kafka_topic_partition_list_add(l, topic, i)->offset
			    = start;
	if (partition >= 0)
		np = 1;
	rd_kafka_metadata_destroy(md);
	rd_kafka_topic_destroy(rkt);
	rd_kafka_assign(rk, l);
	rd_kafka_topic_partition_list_destroy(l);

	int             eof = 0;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	while (follow ? !stop : eof < np) {
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (!follow
		    && (t1.tv_sec - t0.tv_sec) * 1000
		            + (t1.tv_nsec - t0.tv_nsec) / 1000000
		        > wait_ms) {
			fprintf(stderr,
			    "dre-events: timed out (%d of %d "
			    "partitions read to the end)\n",
			    eof, np);
			break;
		}
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
		if (m == NULL)
			continue;
		if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
			eof++;
		} else if (m->err) {
			fprintf(stderr, "dre-events: %s\n",
			    rd_kafka_message_errstr(m));
		} else {
			if (value_only) {
				print_value(stdout, m->payload, m->len, true);
				fputc('\n', stdout);
			} else {
				rd_kafka_timestamp_type_t tt;
				int64_t                   ts
				    = rd_kafka_message_timestamp(m, &tt);
				printf("{\"topic\":\"%s\",\"partition\":%d,"
				       "\"offset\":%lld,",
				    topic, m->partition,
				    (long long) m->offset);
				if (tt != RD_KAFKA_TIMESTAMP_NOT_AVAILABLE)
					printf("\"timestamp\":%lld,"
					       "\"timestampType\":\"%s\",",
					    (long long) ts,
					    tt == RD_KAFKA_TIMESTAMP_CREATE_TIME
					        ? "CreateTime"
					        : "LogAppendTime");
				fputs("\"key\":", stdout);
				json_str(
				    stdout, m->key ? m->key : "", m->key_len);
				fputc(',', stdout);
				print_value(stdout, m->payload, m->len, false);
				fputs("}\n", stdout);
			}
			if (follow)
				fflush(stdout);
		}
		rd_kafka_message_destroy(m);
	}
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	for (int i = 0; i < nschemas; i++) {
		avro_value_iface_decref(schemas[i].iface);
		avro_schema_decref(schemas[i].schema);
	}
	return follow || eof >= np ? 0 : 1;
}
