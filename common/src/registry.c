// registry.c -- registers DRE's event schemas with a Confluent schema
// registry over its REST protocol (libcurl), for events.format=confluent.
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dre/arena.h"
#include "dre/avro.h"
#include "dre/buf.h"
#include "dre/json.h"
#include "dre/jsonw.h"
#include "dre/log.h"
#include "dre/registry.h"
#include "dre/topics.h"

#define MAX_ANSWER (64 * 1024)

static size_t
collect(char *data, size_t size, size_t n, void *arg)
{
	dre_buf *b = arg;
	if (b->len + size * n > MAX_ANSWER)
		return 0; // a registry's answer here is a few bytes
	dre_buf_append(b, data, size * n);
	return b->oom ? 0 : size * n;
}

// register_one POSTs schema name under subject and returns its id (-1 and
// logged on failure).
static int64_t
register_one(CURL *c, const char *url, const char *subject, const char *name,
    int timeout_ms)
{
	const char *json = dre_avro_schema_json(name);
	if (json == NULL) {
		dre_error("registry: no schema %s", name);
		return -1;
	}
	dre_buf   body = { 0 }, answer = { 0 }, target = { 0 };
	dre_jsonw w;
	dre_jsonw_init(&w, &body);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kstr(&w, "schema", json);
	dre_jsonw_obj_end(&w);
	size_t ul = strlen(url);
	dre_buf_append(&target, url, ul - (ul > 0 && url[ul - 1] == '/'));
	dre_buf_append(&target, "/subjects/", 10);
	dre_buf_append(&target, subject, strlen(subject));
	dre_buf_append(&target, "/versions", 9);
	int64_t id = -1;
	if (body.oom || target.oom)
		goto out;
	struct curl_slist *hdrs = curl_slist_append(
	    NULL, "Content-Type: application/vnd.schemaregistry.v1+json");
	hdrs = curl_slist_append(hdrs,
	    "Accept: application/vnd.schemaregistry.v1+json, "
	    "application/json");
	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, target.data);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long) body.len);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &answer);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long) timeout_ms);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	CURLcode rc = curl_easy_perform(c);
	long     status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(hdrs);
	if (rc != CURLE_OK) {
		dre_error("registry: POST %s: %s", (char *) target.data,
		    curl_easy_strerror(rc));
		goto out;
	}
	dre_arena *a = dre_arena_alloc(0);
	dre_json  *root = NULL;
	if (a == NULL)
		goto out;
	if (status == 200
	    && dre_json_parse(&root, a,
	           answer.data ? (char *) answer.data : "", answer.len, 4,
	           NULL)
	        == DRE_OK
	    && dre_json_int(&id, dre_json_get(root, "id"), 0, INT32_MAX)
	        == DRE_OK) {
		dre_info(
		    "registry: %s is schema id %lld", subject, (long long) id);
	} else {
		id = -1;
		dre_error("registry: POST %s: HTTP %ld %.*s",
		    (char *) target.data, status,
		    (int) (answer.len > 300 ? 300 : answer.len),
		    answer.data ? (char *) answer.data : "");
	}
	dre_arena_free(a);
out:
	dre_buf_free(&body);
	dre_buf_free(&answer);
	dre_buf_free(&target);
	return id;
}

dre_err
dre_registry_register_all(const char *url, int timeout_ms)
{
	if (url == NULL
	    || (strncmp(url, "http://", 7) != 0
	        && strncmp(url, "https://", 8) != 0)) {
		dre_error("events.registry_url: '%s' is not an http(s) URL",
		    url ? url : "");
		return DRE_ECONFIG;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	CURL *c = curl_easy_init();
	if (c == NULL)
		return DRE_ENOMEM;
	dre_err err = DRE_OK;
	for (const dre_topic *t = dre_topics; t->name != NULL; t++) {
		if (t->schema == NULL)
			continue;
		char subject[256];
		snprintf(subject, sizeof(subject), "%s-value", t->name);
		int64_t id
		    = register_one(c, url, subject, t->schema, timeout_ms);
		if (id < 0) {
			err = DRE_EUNAVAIL;
			break;
		}
		// One schema, one id: the registry gives the same schema the
		// same id under every subject.
		dre_avro_set_registry_id(t->schema, (int32_t) id);
	}
	curl_easy_cleanup(c);
	if (err == DRE_OK)
		dre_avro_write_confluent(true);
	return err;
}
