// webhook/deliver.c -- the delivery thread: due attempts from the schedule
// go out through one libcurl multi handle (connections reused, TLS
// verified, no redirects, a timeout per attempt), bounded in flight per
// subscription and in total, so a receiver that hangs holds only its own
// slots. Each answer updates the delivery record: DELIVERED, a retry with
// exponential back-off, or FAILED and a dead-letter event.
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "dre/clock.h"
#include "dre/jsonw.h"
#include "dre/log.h"
#include "dre/metrics.h"
#include "dre/svc.h"
#include "dre/uuid.h"
#include "webhook.h"

#define RESP_KEEP  1024 // bytes of an answer kept in the attempt log
#define RESP_PARSE 65536 // bytes of an answer read for errorCode
#define SWEEP_MS   60000 // retention sweep period
#define SECRET_MAX 256

typedef struct {
	bool               used;
	CURL              *e;
	char               tenant[128];
	char               id[DRE_UUID_LEN + 1];
	char               sub_id[DRE_UUID_LEN + 1];
	int64_t            series;
	struct curl_slist *hdrs;
	dre_buf            resp;
	int64_t            started_ms;
	bool               refused; // the guard refused the address
	wh                *s;
} xfer;

struct wh_deliverer {
	wh         *s;
	pthread_t   th;
	CURLM      *m;
	atomic_bool stop;
	xfer       *x;
	size_t      cap, active;
	int64_t     next_due; // earliest due entry not started (ms), 0 = none
	int64_t     last_sweep;
};

// ---- the answer ------------------------------------------------------------

static size_t
on_body(char *p, size_t size, size_t n, void *arg)
{
	xfer  *x = arg;
	size_t len = size * n;
	if (x->resp.len < RESP_PARSE) {
		size_t take = RESP_PARSE - x->resp.len;
		dre_buf_append(&x->resp, p, len < take ? len : take);
	}
	return len; // read on: the connection stays reusable
}

static curl_socket_t
open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
	xfer *x = arg;
	(void) purpose;
	if (!dre_net_addr_allowed(&a->addr, x->s->o.allow_insecure)) {
		x->refused = true;
		return CURL_SOCKET_BAD;
	}
	return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

// answer_refuses: a 2xx whose JSON body has a top-level errorCode or
// errorMessage is a failure (Retail Cloud's rule).
static bool
answer_refuses(const dre_buf *resp)
{
	if (resp->len == 0)
		return false;
	dre_arena *a = dre_arena_alloc(0);
	dre_json  *doc = NULL;
	bool       refuses = false;
	if (a != NULL
	    && dre_json_parse(
	           &doc, a, resp->data, resp->len, DRE_JSON_MAX_DEPTH, NULL)
	        == DRE_OK
	    && dre_json_is(doc, DRE_JSON_OBJECT))
		refuses = dre_json_get(doc, "errorCode") != NULL
		    || dre_json_get(doc, "errorMessage") != NULL;
	dre_arena_free(a);
	return refuses;
}

// backoff_ms: min(initial x 2^(n-1), max) +- 10 %.
static int64_t
backoff_ms(const wh_sub *u, int64_t n)
{
	double d = (double) u->initial_s;
	for (int64_t i = 1; i < n && d < (double) u->max_s; i++)
		d *= 2;
	if (d > (double) u->max_s)
		d = (double) u->max_s;
	unsigned short r = 0;
	RAND_bytes((unsigned char *) &r, sizeof r);
	double jitter = ((double) r / 65535.0 * 0.2) - 0.1;
	return (int64_t) (d * 1000.0 * (1.0 + jitter));
}

// ---- state changes
// -----------------------------------------------------------

// dead_letter raises WEBHOOK_DELIVERY_DEAD_LETTER for d into b.
static dre_err
dead_letter(wh *s, dre_batch *b, dre_arena *a, const char *tenant,
    const wh_delivery *d, int64_t now)
{
	if (strcmp(d->event_type, "WEBHOOK_DELIVERY_DEAD_LETTER") == 0)
		return DRE_OK; // never a dead letter of a dead letter
	char    eid[DRE_UUID_LEN + 1], seed[128];
	int     sl = snprintf(seed, sizeof seed, "webhook-dead-letter|%s|%lld",
	        d->id, (long long) d->series);
	dre_buf data = { 0 }, body = { 0 };
	dre_uuid_derive(eid, seed, (size_t) sl);
	dre_jsonw w;
	dre_jsonw_init(&w, &data);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kstr(&w, "deliveryId", d->id);
	dre_jsonw_kstr(&w, "subscriptionId", d->sub_id);
	dre_jsonw_kstr(&w, "eventId", d->event_id);
	dre_jsonw_kstr(&w, "eventType", d->event_type);
	dre_jsonw_kint(&w, "attempts", d->attempts);
	if (d->last_status > 0)
		dre_jsonw_kint(&w, "lastStatusCode", d->last_status);
	dre_jsonw_kstr(&w, "lastError", d->last_error);
	dre_jsonw_obj_end(&w);
	wh_event_body(&body, eid, "WEBHOOK_DELIVERY_DEAD_LETTER", now, tenant,
	    data.data, data.len);
	size_t  n = 0;
	dre_err err = data.oom || body.oom
	    ? DRE_ENOMEM
	    : wh_fanout(s, b, a, tenant, eid, "WEBHOOK_DELIVERY_DEAD_LETTER",
	        body.data, body.len, now, &n);
	dre_buf_free(&data);
	dre_buf_free(&body);
	return err;
}

static void
deactivate(wh *s, dre_batch *b, dre_arena *a, const char *tenant,
    const char *sub_id, int64_t now)
{
	wh_sub u;
	if (wh_sub_get(s, a, tenant, sub_id, &u) != DRE_OK || !u.active)
		return;
	u.active = false;
	u.modified_at = now;
	wh_sub_put(s, b, tenant, &u);
	dre_warn("subscription %s/%s answered 410 Gone: deactivated", tenant,
	    sub_id);
}

// finish records the outcome of one attempt of d (under s->mu).
static void
finish(wh *s, dre_arena *a, const char *tenant, wh_delivery *d,
    const wh_sub *u, int64_t now, int64_t started, long code,
    const char *error, const dre_buf *resp, bool ok)
{
	dre_buf   log = { 0 };
	dre_jsonw w;
	dre_jsonw_init(&w, &log);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_key(&w, "time");
	dre_jsonw_time(&w, started);
	dre_jsonw_key(&w, "statusCode");
	if (code > 0)
		dre_jsonw_int(&w, code);
	else
		dre_jsonw_null(&w);
	dre_jsonw_kint(&w, "durationMs", now - started);
	dre_jsonw_kstr(&w, "error", error);
	dre_jsonw_key(&w, "response");
	if (resp != NULL && resp->len > 0) {
		// The first KiB, cut at a character boundary.
		size_t n = resp->len < RESP_KEEP ? resp->len : RESP_KEEP;
		while (n > 0 && !dre_utf8_valid(resp->data, n, NULL))
			n--;
		dre_jsonw_strn(&w, resp->data, n);
	} else {
		dre_jsonw_null(&w);
	}
	dre_jsonw_kint(&w, "series", d->series);
	dre_jsonw_obj_end(&w);

	int64_t old_due = d->next_attempt_at;
	d->attempts++;
	d->total_attempts++;
	d->last_attempt_at = started;
	d->last_status = code;
	d->last_error = error;
	d->extra_log = log.oom ? NULL : log.data;
	dre_batch *b = dre_batch_alloc();
	if (b == NULL) {
		dre_buf_free(&log);
		return;
	}
	if (ok) {
		d->status = "DELIVERED";
	} else if (code == 410) {
		d->status = "FAILED";
		deactivate(s, b, a, tenant, d->sub_id, now);
	} else if (d->attempts >= u->max_attempts) {
		d->status = "FAILED";
		dead_letter(s, b, a, tenant, d, now);
	} else {
		d->next_attempt_at = now + backoff_ms(u, d->attempts);
	}
	dre_metric_inc(dre_metric_counter("dre_webhook_attempts_total",
	    "delivery attempts, by outcome (delivered, retry: another "
	    "attempt is scheduled, failed: the delivery ended unsuccessfully)",
	    ok                                     ? "result=\"delivered\""
	        : strcmp(d->status, "FAILED") == 0 ? "result=\"failed\""
	                                           : "result=\"retry\""));
	dre_metric_observe_us(
	    dre_metric_histogram("dre_webhook_attempt_duration_seconds",
	        "time of a delivery attempt, request to answer or failure",
	        NULL),
	    (now - started) * 1000);
	dre_err err = wh_delivery_put(s, b, tenant, d, old_due);
	if (err == DRE_OK)
		err = code == 410 ? wh_subs_write(s, b, false) // deactivated
		                  : dre_store_write(s->st, b, false);
	if (err != DRE_OK)
		dre_error("delivery %s/%s: cannot record the attempt: %s",
		    tenant, d->id, dre_strerror(err));
	else if (strcmp(d->status, "FAILED") == 0)
		dre_warn("delivery %s/%s of %s failed after %lld attempts: %s",
		    tenant, d->id, d->event_type, (long long) d->attempts,
		    error ? error : "refused");
	dre_batch_free(b);
	dre_buf_free(&log);
}

// fail_now ends d without an attempt (its subscription is gone).
static void
fail_now(wh *s, dre_arena *a, const char *tenant, wh_delivery *d,
    const char *why, int64_t now)
{
	(void) a;
	int64_t old_due = d->next_attempt_at;
	d->status = "FAILED";
	d->last_error = why;
	dre_batch *b = dre_batch_alloc();
	if (b == NULL)
		return;
	if (wh_delivery_put(s, b, tenant, d, old_due) == DRE_OK)
		dre_store_write(s->st, b, false);
	dre_batch_free(b);
	(void) now;
}

// ---- transfers
// -----------------------------------------------------------------

static void
xfer_clear(wh_deliverer *dl, xfer *x)
{
	if (x->e != NULL) {
		curl_multi_remove_handle(dl->m, x->e);
		curl_easy_cleanup(x->e);
	}
	curl_slist_free_all(x->hdrs);
	dre_buf_free(&x->resp);
	memset(x, 0, sizeof(*x));
	dl->active--;
}

static bool
in_flight(wh_deliverer *dl, const char *tenant, const char *id,
    const char *sub_id, size_t *per_sub)
{
	*per_sub = 0;
	for (size_t i = 0; i < dl->cap; i++) {
		xfer *x = &dl->x[i];
		if (!x->used || strcmp(x->tenant, tenant) != 0)
			continue;
		if (strcmp(x->id, id) == 0)
			return true;
		if (sub_id != NULL && strcmp(x->sub_id, sub_id) == 0)
			(*per_sub)++;
	}
	return false;
}

static struct curl_slist *
header(struct curl_slist *l, const char *name, const char *value)
{
	char line[256];
	snprintf(line, sizeof line, "%s: %s", name, value);
	struct curl_slist *n = curl_slist_append(l, line);
	if (n == NULL)
		curl_slist_free_all(l);
	return n;
}

// start sends one attempt of d to u.
static dre_err
start(wh_deliverer *dl, dre_arena *a, const char *tenant, const wh_delivery *d,
    const wh_sub *u, int64_t now)
{
	wh           *s = dl->s;
	xfer         *x = NULL;
	char          secret[SECRET_MAX];
	unsigned char key[128];
	size_t        kl = 0;
	for (size_t i = 0; i < dl->cap && x == NULL; i++)
		if (!dl->x[i].used)
			x = &dl->x[i];
	if (x == NULL)
		return DRE_EUNAVAIL;
	if (u->sealed == NULL
	    || dre_unseal(secret, sizeof secret, s->seal_key, u->sealed)
	        != DRE_OK
	    || (kl = wh_secret_key(key, sizeof key, secret)) == 0) {
		dre_error("subscription %s/%s: its secret cannot be unsealed "
		          "(another key file?)",
		    tenant, u->id);
		return DRE_ECODEC;
	}
	dre_buf   body = { 0 };
	dre_jsonw w;
	dre_jsonw_init(&w, &body);
	dre_jsonw_json(&w, d->payload);
	if (body.oom)
		return DRE_ENOMEM;
	char    ts[24], sig[128], dsig[80];
	int64_t sec = now / 1000;
	snprintf(ts, sizeof ts, "%lld", (long long) sec);
	wh_sign_std(
	    sig, sizeof sig, key, kl, d->event_id, sec, body.data, body.len);
	wh_sign_dre(dsig, sizeof dsig, key, kl, body.data, body.len);
	OPENSSL_cleanse(key, sizeof key);
	OPENSSL_cleanse(secret, sizeof secret);

	memset(x, 0, sizeof(*x));
	x->s = s;
	snprintf(x->tenant, sizeof x->tenant, "%s", tenant);
	snprintf(x->id, sizeof x->id, "%s", d->id);
	snprintf(x->sub_id, sizeof x->sub_id, "%s", d->sub_id);
	x->series = d->series;
	x->started_ms = now;
	struct curl_slist *h = NULL;
	h = header(h, "Content-Type", "application/json");
	if (h)
		h = header(h, "User-Agent", "DRE-Webhook/1");
	if (h)
		h = header(h, "webhook-id", d->event_id);
	if (h)
		h = header(h, "webhook-timestamp", ts);
	if (h)
		h = header(h, "webhook-signature", sig);
	if (h)
		h = header(h, "X-DRE-Signature", dsig);
	if (h) // no 100-continue round trip for bodies over 1 KiB
		h = curl_slist_append(h, "Expect:");
	x->hdrs = h;
	x->e = curl_easy_init();
	if (x->hdrs == NULL || x->e == NULL) {
		curl_slist_free_all(x->hdrs);
		if (x->e)
			curl_easy_cleanup(x->e);
		memset(x, 0, sizeof(*x));
		dre_buf_free(&body);
		return DRE_ENOMEM;
	}
	CURL *e = x->e;
	curl_easy_setopt(e, CURLOPT_URL, u->url);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR,
	    s->o.allow_insecure ? "http,https" : "https");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	// No proxy from the environment: the guard must see the target's
	// own addresses, not a proxy's.
	curl_easy_setopt(e, CURLOPT_PROXY, "");
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long) s->o.timeout_ms);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->hdrs);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long) body.len);
	curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, body.data);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_socket);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, x);
	curl_easy_setopt(e, CURLOPT_PRIVATE, x);
	dre_buf_free(&body);
	if (curl_multi_add_handle(dl->m, e) != CURLM_OK) {
		curl_slist_free_all(x->hdrs);
		curl_easy_cleanup(e);
		memset(x, 0, sizeof(*x));
		return DRE_ENOMEM;
	}
	x->used = true;
	dl->active++;
	(void) a;
	return DRE_OK;
}

// done handles the end of one transfer.
static void
done(wh_deliverer *dl, xfer *x, CURLcode rc)
{
	wh        *s = dl->s;
	int64_t    now = dre_now_ms();
	long       code = 0;
	char       err[CURL_ERROR_SIZE + 64] = "";
	dre_arena *a = dre_arena_alloc(0);
	curl_easy_getinfo(x->e, CURLINFO_RESPONSE_CODE, &code);
	bool ok = rc == CURLE_OK && code >= 200 && code < 300
	    && !answer_refuses(&x->resp);
	if (x->refused)
		snprintf(err, sizeof err,
		    "the target resolves to a private, loopback, link-local "
		    "or "
		    "multicast address");
	else if (rc != CURLE_OK)
		snprintf(err, sizeof err, "%s", curl_easy_strerror(rc));
	else if (code < 200 || code >= 300)
		snprintf(err, sizeof err, "HTTP %ld", code);
	else if (!ok)
		snprintf(err, sizeof err,
		    "the answer carries errorCode or errorMessage");
	pthread_mutex_lock(&s->mu);
	wh_delivery d;
	wh_sub      u;
	if (a != NULL && wh_delivery_get(s, a, x->tenant, x->id, &d) == DRE_OK
	    && strcmp(d.status, "PENDING") == 0 && d.series == x->series) {
		if (wh_sub_get(s, a, x->tenant, d.sub_id, &u) != DRE_OK) {
			memset(&u, 0, sizeof u);
			u.max_attempts = 1;
		}
		finish(s, a, x->tenant, &d, &u, now, x->started_ms,
		    rc == CURLE_OK ? code : 0, err[0] ? err : NULL, &x->resp,
		    ok);
	}
	pthread_mutex_unlock(&s->mu);
	dre_arena_free(a);
	xfer_clear(dl, x);
}

// fill starts due attempts while there is room; remembers the next due.
static void
fill(wh_deliverer *dl, int64_t now)
{
	wh             *s = dl->s;
	dre_store_iter *it = NULL;
	dl->next_due = 0;
	if (dl->active >= dl->cap)
		return;
	if (dre_store_iter_open(&it, s->st, WH_CF_DUE, NULL, 0) != DRE_OK)
		return;
	dre_arena  *a = dre_arena_alloc(0);
	const char *k, *v;
	size_t      kl, vl;
	while (a != NULL && dl->active < dl->cap
	    && dre_store_iter_next(it, &k, &kl, &v, &vl)) {
		if (kl < 10)
			continue;
		int64_t due = dre_be64_get(k);
		if (due > now) {
			dl->next_due = due;
			break;
		}
		// due tenant \0 sub \0 id
		char        tenant[128], sub[WH_KEY_MAX], id[WH_KEY_MAX];
		const char *p = k + 8, *end = k + kl;
		const char *z1 = memchr(p, '\0', (size_t) (end - p));
		const char *z2 = z1
		    ? memchr(z1 + 1, '\0', (size_t) (end - z1 - 1))
		    : NULL;
		if (z2 == NULL || (size_t) (z1 - p) >= sizeof tenant
		    || (size_t) (z2 - z1 - 1) >= sizeof sub
		    || (size_t) (end - z2 - 1) >= sizeof id)
			continue;
		memcpy(tenant, p, (size_t) (z1 - p));
		tenant[z1 - p] = '\0';
		memcpy(sub, z1 + 1, (size_t) (z2 - z1 - 1));
		sub[z2 - z1 - 1] = '\0';
		memcpy(id, z2 + 1, (size_t) (end - z2 - 1));
		id[end - z2 - 1] = '\0';
		// A subscription at its bound is passed over without a read.
		size_t per_sub = 0;
		if (in_flight(dl, tenant, id, sub, &per_sub)
		    || (int64_t) per_sub >= s->o.max_in_flight_per_sub)
			continue;
		dre_arena_reset(a);
		pthread_mutex_lock(&s->mu);
		wh_delivery d;
		wh_sub      u;
		dre_err     err = wh_delivery_get(s, a, tenant, id, &d);
		if (err != DRE_OK || strcmp(d.status, "PENDING") != 0
		    || d.next_attempt_at != due) {
			// A stale entry (record gone or moved): drop it.
			dre_batch *b = dre_batch_alloc();
			char       dk[WH_KEY_MAX + 8];
			size_t     dkl
			    = wh_due_key(dk, sizeof dk, due, tenant, sub, id);
			if (b != NULL && dkl > 0) {
				dre_batch_delete(b, s->st, WH_CF_DUE, dk, dkl);
				dre_store_write(s->st, b, false);
			}
			dre_batch_free(b);
			pthread_mutex_unlock(&s->mu);
			continue;
		}
		err = wh_sub_get(s, a, tenant, d.sub_id, &u);
		if (err == DRE_ENOTFOUND || (err == DRE_OK && !u.active)) {
			fail_now(s, a, tenant, &d,
			    err == DRE_OK ? "the subscription is inactive"
			                  : "the subscription was deleted",
			    now);
			pthread_mutex_unlock(&s->mu);
			continue;
		}
		pthread_mutex_unlock(&s->mu);
		if (err != DRE_OK)
			continue;
		if ((err = start(dl, a, tenant, &d, &u, now)) != DRE_OK
		    && err != DRE_EUNAVAIL) {
			pthread_mutex_lock(&s->mu);
			wh_delivery again;
			if (wh_delivery_get(s, a, tenant, id, &again) == DRE_OK
			    && strcmp(again.status, "PENDING") == 0)
				finish(s, a, tenant, &again, &u, now, now, 0,
				    "the request could not be prepared", NULL,
				    false);
			pthread_mutex_unlock(&s->mu);
		}
	}
	dre_store_iter_close(it);
	dre_arena_free(a);
}

// sweep drops DELIVERED records older than the retention.
static void
sweep(wh_deliverer *dl, int64_t now)
{
	wh             *s = dl->s;
	dre_store_iter *it = NULL;
	if (dre_store_iter_open(&it, s->st, WH_CF_DELIVERIES, NULL, 0)
	    != DRE_OK)
		return;
	dre_arena  *a = dre_arena_alloc(0);
	dre_batch  *b = dre_batch_alloc();
	const char *k, *v;
	size_t      kl, vl, n = 0;
	while (a != NULL && b != NULL
	    && dre_store_iter_next(it, &k, &kl, &v, &vl)) {
		wh_delivery d;
		dre_arena_reset(a);
		if (wh_delivery_parse(&d, a, v, vl) == DRE_OK
		    && strcmp(d.status, "DELIVERED") == 0
		    && d.last_attempt_at < now - s->o.retention_ms) {
			dre_batch_delete(b, s->st, WH_CF_DELIVERIES, k, kl);
			n++;
		}
	}
	dre_store_iter_close(it);
	if (n > 0) {
		pthread_mutex_lock(&s->mu);
		dre_store_write(s->st, b, false);
		pthread_mutex_unlock(&s->mu);
		dre_info("retention: %zu delivered records dropped", n);
	}
	dre_batch_free(b);
	dre_arena_free(a);
}

static void *
run(void *arg)
{
	wh_deliverer *dl = arg;
	dre_thread_name("webhook:send", NULL);
	while (!atomic_load(&dl->stop)) {
		int64_t now = dre_now_ms();
		fill(dl, now);
		int running = 0;
		curl_multi_perform(dl->m, &running);
		CURLMsg *msg;
		int      left = 0;
		while ((msg = curl_multi_info_read(dl->m, &left)) != NULL) {
			if (msg->msg != CURLMSG_DONE)
				continue;
			xfer *x = NULL;
			curl_easy_getinfo(
			    msg->easy_handle, CURLINFO_PRIVATE, (char **) &x);
			if (x != NULL)
				done(dl, x, msg->data.result);
		}
		if (now - dl->last_sweep > SWEEP_MS) {
			sweep(dl, now);
			dl->last_sweep = now;
		}
		int64_t wait = 1000;
		if (dl->next_due > 0 && dl->active < dl->cap) {
			int64_t until = dl->next_due - dre_now_ms();
			wait = until < 0 ? 0 : until < wait ? until : wait;
		}
		curl_multi_poll(dl->m, NULL, 0, (int) wait, NULL);
	}
	return NULL;
}

dre_err
wh_deliverer_start(wh *s)
{
	wh_deliverer *dl = calloc(1, sizeof(*dl));
	if (dl == NULL)
		return DRE_ENOMEM;
	dl->s = s;
	dl->cap = s->o.max_in_flight > 0 ? (size_t) s->o.max_in_flight : 64;
	dl->x = calloc(dl->cap, sizeof(*dl->x));
	dl->m = curl_multi_init();
	dl->last_sweep = dre_now_ms();
	if (dl->x == NULL || dl->m == NULL) {
		free(dl->x);
		if (dl->m)
			curl_multi_cleanup(dl->m);
		free(dl);
		return DRE_ENOMEM;
	}
	curl_multi_setopt(dl->m, CURLMOPT_MAXCONNECTS, (long) dl->cap);
	if (pthread_create(&dl->th, NULL, run, dl) != 0) {
		curl_multi_cleanup(dl->m);
		free(dl->x);
		free(dl);
		return DRE_ENOMEM;
	}
	s->dl = dl;
	return DRE_OK;
}

void
wh_deliverer_kick(wh *s)
{
	if (s->dl != NULL)
		curl_multi_wakeup(s->dl->m);
}

void
wh_deliverer_stop(wh *s)
{
	wh_deliverer *dl = s->dl;
	if (dl == NULL)
		return;
	atomic_store(&dl->stop, true);
	curl_multi_wakeup(dl->m);
	pthread_join(dl->th, NULL);
	for (size_t i = 0; i < dl->cap; i++)
		if (dl->x[i].used)
			xfer_clear(dl, &dl->x[i]);
	curl_multi_cleanup(dl->m);
	free(dl->x);
	free(dl);
	s->dl = NULL;
}
