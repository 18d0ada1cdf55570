// importjob.c -- bulk import jobs run by the entity's owner (dre/importjob.h):
// the job record, cursor and row errors in the owner's store, the upload
// file (read row by row by dre/importread.h), the worker thread, cancel, the
// IMPORT_JOB_FINISHED event and the signed callback: its secret sealed at
// rest (dre/seal.h), the callback itself a record written with the job's
// end and sent (and retried with back-off, across restarts) by a thread of
// its own until the receiver answers 2xx.
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "dre/arena.h"
#include "dre/avro.h"
#include "dre/clock.h"
#include "dre/docapi.h"
#include "dre/fs.h"
#include "dre/hmac.h"
#include "dre/importjob.h"
#include "dre/importread.h"
#include "dre/json.h"
#include "dre/jsonw.h"
#include "dre/log.h"
#include "dre/netguard.h"
#include "dre/odata.h"
#include "dre/svc.h"
#include "dre/topics.h"
#include "dre/uuid.h"

#define MINOR       1
#define LIST_TOP    100
#define LIST_MAX    1000
#define CALLBACK_MS 5000

// Keys in the owner's column family: tag tenant \0 id [\0 be64 row].
#define K_JOB    'j' // the job record (JSON)
#define K_CURSOR 'c' // offset, row, succeeded, failed: 4 x be64
#define K_ERROR  'e' // one rejected row (JSON)
#define K_ITEM   'i' // one row's result (JSON), jobs with items only
#define K_CALLBACK                                                            \
	'b' // a finish callback not yet acknowledged (JSON: callbackId,
	    // attempts, due, body)

#define CALLBACK_ATTEMPTS 10
#define CALLBACK_BACKOFF  1000
#define CALLBACK_MAX_WAIT (15 * 60 * 1000)
#define CALLBACK_IDLE_MS  60000
#define SEALED_MAX        512

static const char *const status_names[]
    = { "WAITING_FOR_DATA", "QUEUED", "RUNNING", "COMPLETED",
	      "COMPLETED_WITH_ERRORS", "FAILED", "CANCELLED" };
static const char *const fmt_names[] = { "JSON", "NDJSON", "CSV" };
static const char *const mode_names[] = { "UPSERT", "CREATE" };

const char *
dre_ijob_fmt_name(dre_ijob_fmt f)
{
	return fmt_names[(unsigned) f % 3];
}

const char *
dre_ijob_status_name(dre_ijob_status s)
{
	return (unsigned) s < 7 ? status_names[s] : "FAILED";
}

static int
name_index(const char *const *names, int n, const char *s)
{
	for (int i = 0; s != NULL && i < n; i++)
		if (strcmp(names[i], s) == 0)
			return i;
	return -1;
}

// grow makes room for one more element of sz bytes in the array *vp
// (n used, *cap allocated); false when out of memory.
static bool
grow(void *vp, size_t n, size_t *cap, size_t sz)
{
	void **v = vp;
	if (n < *cap)
		return true;
	size_t nc = *cap ? *cap * 2 : 16;
	void  *nv = realloc(*v, nc * sz);
	if (nv == NULL)
		return false;
	*v = nv;
	*cap = nc;
	return true;
}

// cond_wait_ms waits on cv (mu held) for at most ms.
static void
cond_wait_ms(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t ms)
{
	struct timespec ts = dre_timespec_after(CLOCK_REALTIME, ms);
	pthread_cond_timedwait(cv, mu, &ts);
}

// ---- the job record ------------------------------------------------------

typedef struct {
	char            tenant[128];
	char            id[DRE_IJOB_ID_MAX];
	char            entity[48];
	char            name[4 * DRE_IJOB_NAME_MAX + 1];
	char            source[16];
	char            principal[128];
	char            callback_url[2048];
	char            sealed_secret[SEALED_MAX]; // dre/seal.h
	dre_ijob_status status;
	dre_ijob_fmt    format;
	dre_ijob_mode   mode;
	int64_t         created_at, started_at, finished_at;
	int64_t         bytes; // the uploaded file's size
	int64_t         total; // rows, once finished (-1 before)
	char            error[512]; // why it FAILED
} job;

typedef struct {
	int64_t offset, row, ok, failed;
} cursor;

typedef struct qent {
	char         tenant[128];
	char         id[DRE_IJOB_ID_MAX];
	struct qent *next;
} qent;

struct dre_ijob_reg {
	dre_ijob_cfg    cfg;
	char            dir[4096];
	pthread_mutex_t mu;
	pthread_cond_t  cv;
	pthread_t       th;
	bool            started, stop;
	qent           *head, *tail;
	// The job the worker runs and whether a cancel asked it to stop.
	char running[DRE_IJOB_ID_MAX];
	char running_tenant[128];
	bool cancel;
	bool done; // the running job finished (cancel waits for it)
	// The callback thread: sends the K_CALLBACK records that are due.
	pthread_t      cbth;
	pthread_cond_t cbcv;
	bool           cb_started, cb_kick;
};

static size_t
jkey(char *out, size_t cap, char tag, const char *tenant, const char *id)
{
	return dre_key(out, cap, tag, 2, tenant, id);
}

static size_t
rowkey(char *out, size_t cap, char tag, const char *tenant, const char *id,
    int64_t row)
{
	size_t n = dre_key(out, cap, tag, 2, tenant, id);
	if (n == 0 || n + 9 > cap)
		return 0;
	out[n] = 0;
	dre_be64_put(out + n + 1, row);
	return n + 9;
}

static void
job_write(dre_buf *b, const job *j)
{
	dre_jsonw w;
	dre_jsonw_init(&w, b);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kstr(&w, "id", j->id);
	dre_jsonw_kstr(&w, "entity", j->entity);
	dre_jsonw_kstr(&w, "name", j->name[0] ? j->name : NULL);
	dre_jsonw_kstr(&w, "source", j->source);
	dre_jsonw_kstr(&w, "principal", j->principal);
	dre_jsonw_kstr(&w, "callbackUrl", j->callback_url);
	dre_jsonw_kstr(&w, "callbackSecretSealed",
	    j->sealed_secret[0] ? j->sealed_secret : NULL);
	dre_jsonw_kint(&w, "status", j->status);
	dre_jsonw_kint(&w, "format", j->format);
	dre_jsonw_kint(&w, "mode", j->mode);
	dre_jsonw_kint(&w, "createdAt", j->created_at);
	dre_jsonw_kint(&w, "startedAt", j->started_at);
	dre_jsonw_kint(&w, "finishedAt", j->finished_at);
	dre_jsonw_kint(&w, "bytes", j->bytes);
	dre_jsonw_kint(&w, "total", j->total);
	dre_jsonw_kstr(&w, "error", j->error);
	dre_jsonw_obj_end(&w);
}

static void
jstr(char *out, size_t cap, const dre_json *o, const char *k)
{
	const dre_json *v = dre_json_get(o, k);
	snprintf(
	    out, cap, "%s", dre_json_is(v, DRE_JSON_STRING) ? v->str : "");
}

static int64_t
jint(const dre_json *o, const char *k)
{
	const dre_json *v = dre_json_get(o, k);
	return dre_json_is(v, DRE_JSON_NUMBER) ? strtoll(v->str, NULL, 10) : 0;
}

static dre_err
job_get(dre_ijob_reg *r, const char *tenant, const char *id, job *j)
{
	char    kb[512], *val = NULL;
	size_t  vl = 0, kl = jkey(kb, sizeof kb, K_JOB, tenant, id);
	dre_err err;
	if (kl == 0)
		return DRE_ENOTFOUND;
	if ((err = dre_store_get(r->cfg.st, r->cfg.cf, kb, kl, &val, &vl))
	    != DRE_OK)
		return err;
	dre_arena *a = dre_arena_alloc(0);
	dre_json  *o = NULL;
	err = a == NULL
	    ? DRE_ENOMEM
	    : dre_json_parse(&o, a, val, vl, DRE_JSON_MAX_DEPTH, NULL);
	if (err == DRE_OK) {
		memset(j, 0, sizeof *j);
		snprintf(j->tenant, sizeof j->tenant, "%s", tenant);
		jstr(j->id, sizeof j->id, o, "id");
		jstr(j->entity, sizeof j->entity, o, "entity");
		jstr(j->name, sizeof j->name, o, "name");
		jstr(j->source, sizeof j->source, o, "source");
		jstr(j->principal, sizeof j->principal, o, "principal");
		jstr(
		    j->callback_url, sizeof j->callback_url, o, "callbackUrl");
		jstr(j->sealed_secret, sizeof j->sealed_secret, o,
		    "callbackSecretSealed");
		const dre_json *clear = dre_json_get(o, "callbackSecret");
		if (j->sealed_secret[0] == 0
		    && dre_json_is(clear, DRE_JSON_STRING) && clear->str[0]) {
			// A record of before the secrets were sealed: sealed
			// now, stored so at the job's next write.
			dre_buf sb = { 0 };
			if (dre_seal(&sb, r->cfg.seal_key, clear->str)
			        == DRE_OK
			    && sb.len < sizeof j->sealed_secret)
				memcpy(j->sealed_secret, sb.data, sb.len);
			dre_buf_free(&sb);
		}
		jstr(j->error, sizeof j->error, o, "error");
		j->status = (dre_ijob_status) jint(o, "status");
		j->format = (dre_ijob_fmt) jint(o, "format");
		j->mode = (dre_ijob_mode) jint(o, "mode");
		j->created_at = jint(o, "createdAt");
		j->started_at = jint(o, "startedAt");
		j->finished_at = jint(o, "finishedAt");
		j->bytes = jint(o, "bytes");
		j->total = jint(o, "total");
	}
	dre_arena_free(a);
	free(val);
	return err == DRE_OK ? DRE_OK : DRE_ESTORE;
}

static void
job_put(dre_ijob_reg *r, dre_batch *b, const job *j)
{
	char    kb[512];
	size_t  kl = jkey(kb, sizeof kb, K_JOB, j->tenant, j->id);
	dre_buf v = { 0 };
	job_write(&v, j);
	if (kl > 0 && !v.oom)
		dre_batch_put(b, r->cfg.st, r->cfg.cf, kb, kl, v.data, v.len);
	dre_buf_free(&v);
}

static void
cursor_get(dre_ijob_reg *r, const job *j, cursor *c)
{
	char   kb[512], *val = NULL;
	size_t vl = 0, kl = jkey(kb, sizeof kb, K_CURSOR, j->tenant, j->id);
	memset(c, 0, sizeof *c);
	if (kl > 0
	    && dre_store_get(r->cfg.st, r->cfg.cf, kb, kl, &val, &vl) == DRE_OK
	    && vl == 32) {
		c->offset = dre_be64_get(val);
		c->row = dre_be64_get(val + 8);
		c->ok = dre_be64_get(val + 16);
		c->failed = dre_be64_get(val + 24);
	}
	free(val);
}

static void
cursor_put(dre_ijob_reg *r, dre_batch *b, const char *tenant, const char *id,
    const cursor *c)
{
	char          kb[512];
	unsigned char v[32];
	size_t        kl = jkey(kb, sizeof kb, K_CURSOR, tenant, id);
	dre_be64_put(v, c->offset);
	dre_be64_put(v + 8, c->row);
	dre_be64_put(v + 16, c->ok);
	dre_be64_put(v + 24, c->failed);
	if (kl > 0)
		dre_batch_put(b, r->cfg.st, r->cfg.cf, kb, kl, v, sizeof v);
}

static void
file_path(dre_ijob_reg *r, const job *j, char *out, size_t cap)
{
	// The tenant is part of the name through its hash-free escape: ids
	// are unique on their own (a UUID each).
	snprintf(out, cap, "%s/%s.data", r->dir, j->id);
}

// job_doc appends the job as GET answers it.
static void
job_doc(dre_ijob_reg *r, const job *j, dre_buf *out)
{
	cursor    c;
	dre_jsonw w;
	cursor_get(r, j, &c);
	dre_jsonw_init(&w, out);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kstr(&w, "id", j->id);
	dre_jsonw_kstr(&w, "entity", j->entity);
	dre_jsonw_kstr(&w, "mode", mode_names[j->mode & 1]);
	dre_jsonw_kstr(&w, "format", fmt_names[j->format % 3]);
	dre_jsonw_kstr(&w, "name", j->name[0] ? j->name : NULL);
	dre_jsonw_kstr(&w, "status", dre_ijob_status_name(j->status));
	dre_jsonw_key(&w, "total");
	if (j->total >= 0 && j->status >= DRE_IJOB_COMPLETED)
		dre_jsonw_int(&w, j->total);
	else
		dre_jsonw_null(&w);
	dre_jsonw_kint(&w, "processed", c.row);
	dre_jsonw_kint(&w, "succeeded", c.ok);
	dre_jsonw_kint(&w, "failed", c.failed);
	int64_t pct = j->status == DRE_IJOB_COMPLETED
	        || j->status == DRE_IJOB_COMPLETED_WITH_ERRORS
	    ? 100
	    : j->bytes > 0 ? c.offset * 100 / j->bytes
	                   : 0;
	dre_jsonw_kint(&w, "progressPercent", pct > 100 ? 100 : pct);
	dre_jsonw_kint(&w, "bytesTotal", j->bytes);
	dre_jsonw_kint(&w, "bytesProcessed", c.offset);
	dre_jsonw_key(&w, "createdAt");
	dre_jsonw_time(&w, j->created_at);
	dre_jsonw_key(&w, "startedAt");
	if (j->started_at)
		dre_jsonw_time(&w, j->started_at);
	else
		dre_jsonw_null(&w);
	dre_jsonw_key(&w, "finishedAt");
	if (j->finished_at)
		dre_jsonw_time(&w, j->finished_at);
	else
		dre_jsonw_null(&w);
	dre_jsonw_kstr(&w, "errorMessage", j->error[0] ? j->error : NULL);
	dre_jsonw_kstr(
	    &w, "callbackUrl", j->callback_url[0] ? j->callback_url : NULL);
	if (j->status == DRE_IJOB_WAITING_FOR_DATA) {
		char u[256];
		snprintf(u, sizeof u, "/api/v1/ImportJobs/%s/data", j->id);
		dre_jsonw_kstr(&w, "uploadUrl", u);
	}
	dre_jsonw_obj_end(&w);
}

dre_err
dre_ijob_job_json(
    dre_ijob_reg *r, const char *tenant, const char *id, dre_buf *out)
{
	job     j;
	dre_err err = job_get(r, tenant, id, &j);
	if (err == DRE_OK)
		job_doc(r, &j, out);
	return err;
}

// ---- the thread's current row (dre_ijob_enlist) ---------------------------

// The records of rows the owner wrote nothing for (rejected rows, rows
// applied without a write) wait in a batch of their own with the cursor,
// written when PEND_ROWS rows or PEND_BYTES bytes are in it, before the
// owner's next write, and when the job stops: a crash loses those rows'
// records and their cursor together, and they are read again.
#define PEND_ROWS  500
#define PEND_BYTES (1u << 20)

typedef struct {
	dre_batch *b;
	int64_t    rows;
	size_t     bytes;
} pend;

static dre_err
pend_flush(dre_ijob_reg *r, pend *pd)
{
	dre_err err = DRE_OK;
	if (pd->b != NULL && dre_batch_count(pd->b) > 0)
		err = dre_store_write(r->cfg.st, pd->b, false);
	if (pd->b != NULL)
		dre_batch_clear(pd->b);
	pd->rows = 0;
	pd->bytes = 0;
	return err;
}

typedef struct {
	dre_ijob_reg *r;
	const job    *j;
	cursor        next; // the cursor once the row is applied
	bool          used;
	pend         *pd;
} rowctx;

static __thread rowctx *tl_row;

bool
dre_ijob_enlist(dre_batch *b)
{
	rowctx *x = tl_row;
	dre_err err;
	if (x == NULL || x->used)
		return false;
	// The rows before this one first: their cursor is older.
	if ((err = pend_flush(x->r, x->pd)) != DRE_OK)
		dre_error("import job %s: the records of rows before row "
		          "%lld are lost: %s",
		    x->j->id, (long long) x->next.row, dre_strerror(err));
	cursor_put(x->r, b, x->j->tenant, x->j->id, &x->next);
	x->used = true;
	return true;
}

// ---- a row through an owner's rpc handler ---------------------------------

// res_str copies s (a row's key, an error's message: the client's text)
// into out, cut before a character when it does not fit.
static void
res_str(char *out, size_t cap, const char *s)
{
	s = s != NULL ? s : "";
	snprintf(out, cap, "%.*s", DRE_UTF8_CUT(s, cap - 1));
}

void
dre_ijob_call_init(dre_ijob_call *c, const dre_ijob_row *row, const char *id)
{
	dre__rpc_request__init(&c->rq);
	dre__param__init(&c->pid);
	c->ps[0] = &c->pid;
	if (id != NULL) {
		c->pid.key = (char *) "id";
		c->pid.value = (char *) id;
		c->rq.params = c->ps;
		c->rq.n_params = 1;
	}
	c->rq.method = (char *) "import.row";
	c->rq.tenant = (char *) row->tenant;
	c->rq.principal = (char *) row->principal;
	memset(&c->call, 0, sizeof c->call);
	c->call.method = c->rq.method;
	c->call.tenant = row->tenant;
	c->call.principal = row->principal;
	c->call.body = (const uint8_t *) row->json;
	c->call.body_len = row->len;
	c->call.req = &c->rq;
	c->call.on_worker = true;
}

dre_err
dre_ijob_run(dre_rpc_fn fn, void *svc, const dre_ijob_row *row, const char *id,
    const char *key_field, dre_ijob_result *res)
{
	dre_ijob_call c;
	dre_rpc_reply rep;
	dre_err       out = DRE_OK;
	dre_ijob_call_init(&c, row, id);
	memset(&rep, 0, sizeof rep);
	fn(svc, &c.call, &rep);
	int st = rep.status ? rep.status : 200;
	if (st < 300) {
		dre_arena *a = dre_arena_alloc(0);
		dre_json  *doc = NULL;
		if (a != NULL
		    && dre_json_parse(&doc, a,
		           rep.body.data ? rep.body.data : "", rep.body.len,
		           DRE_JSON_MAX_DEPTH, NULL)
		        == DRE_OK) {
			const dre_json *v = dre_json_get(doc, "id");
			if (dre_json_is(v, DRE_JSON_STRING))
				res_str(res->id, sizeof res->id, v->str);
			v = key_field ? dre_json_get(doc, key_field) : NULL;
			if (dre_json_is(v, DRE_JSON_STRING))
				res_str(res->key, sizeof res->key, v->str);
		}
		dre_arena_free(a);
	} else if (st >= 500) {
		out = DRE_EUNAVAIL;
	} else {
		res_str(res->code, sizeof res->code, rep.error_code);
		res_str(res->message, sizeof res->message,
		    rep.ndetails > 0 ? rep.details[0].message
		                     : rep.error_message);
		res_str(res->target, sizeof res->target,
		    rep.ndetails > 0 ? rep.details[0].target
		                     : rep.error_target);
		if (rep.error_code == NULL && rep.body.len > 0) {
			// The handler wrote its own error document.
			dre_arena *a = dre_arena_alloc(0);
			dre_json  *doc = NULL;
			if (a != NULL
			    && dre_json_parse(&doc, a, rep.body.data,
			           rep.body.len, DRE_JSON_MAX_DEPTH, NULL)
			        == DRE_OK) {
				const dre_json *e = dre_json_get(doc, "error");
				const dre_json *ec = dre_json_get(e, "code");
				const dre_json *m = dre_json_get(e, "message");
				if (dre_json_is(ec, DRE_JSON_STRING))
					res_str(res->code, sizeof res->code,
					    ec->str);
				if (dre_json_is(m, DRE_JSON_STRING))
					res_str(res->message,
					    sizeof res->message, m->str);
			}
			dre_arena_free(a);
		}
		res->status = st;
		out = DRE_EINVAL;
	}
	dre_rpc_reply_clear(&rep);
	return out;
}

// dre_ijob_row_key reads member k of the row (a string) into res->key.
void
dre_ijob_row_key(const dre_ijob_row *row, const char *k, dre_ijob_result *res)
{
	dre_arena *a = dre_arena_alloc(0);
	dre_json  *in = NULL;
	if (a != NULL
	    && dre_json_parse(
	           &in, a, row->json, row->len, DRE_JSON_MAX_DEPTH, NULL)
	        == DRE_OK
	    && dre_json_is(in, DRE_JSON_OBJECT)) {
		const dre_json *v = dre_json_get(in, k);
		if (dre_json_is(v, DRE_JSON_STRING))
			res_str(res->key, sizeof res->key, v->str);
	}
	dre_arena_free(a);
}

// ---- finishing: the event, the callback ---------------------------------
//
// A job with a callbackUrl finishes with a K_CALLBACK record in the batch
// that stores its end: {callbackId, attempts, due, body}. The callback
// thread sends every record that is due, signed with the job's secret
// (unsealed for the moment of the call), with the record's id in
// X-DRE-Callback-Id (the same at every attempt: a receiver de-duplicates
// by it), until the receiver answers 2xx or imports.callback_attempts are
// spent, waiting imports.callback_backoff_ms, doubled each time, between
// attempts. A crash loses no callback: the thread finds the records at the
// next start.

static void
cb_put(dre_ijob_reg *r, dre_batch *b, const char *tenant, const char *jid,
    const char *cid, int64_t attempts, int64_t due, const char *body,
    size_t blen)
{
	char      kb[512];
	dre_buf   v = { 0 };
	dre_jsonw w;
	size_t    kl = jkey(kb, sizeof kb, K_CALLBACK, tenant, jid);
	dre_jsonw_init(&w, &v);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kstr(&w, "callbackId", cid);
	dre_jsonw_kint(&w, "attempts", attempts);
	dre_jsonw_kint(&w, "due", due);
	dre_jsonw_key(&w, "body");
	dre_jsonw_strn(&w, body, blen);
	dre_jsonw_obj_end(&w);
	if (kl > 0 && !v.oom)
		dre_batch_put(b, r->cfg.st, r->cfg.cf, kb, kl, v.data, v.len);
	dre_buf_free(&v);
}

static void
cb_wake(dre_ijob_reg *r)
{
	pthread_mutex_lock(&r->mu);
	r->cb_kick = true;
	pthread_cond_broadcast(&r->cbcv);
	pthread_mutex_unlock(&r->mu);
}

// callback_post makes one attempt; true on a 2xx.
static bool
callback_post(dre_ijob_reg *r, const job *j, const char *cid, const char *body,
    size_t blen, int64_t attempt)
{
	char          ts[24], hex[65], sig[128], idh[96];
	char          secret[SEALED_MAX];
	int64_t       t = dre_now_ms() / 1000;
	unsigned char mac[32];
	int           tl = snprintf(ts, sizeof ts, "%lld", (long long) t);
	if (j->sealed_secret[0] == 0
	    || dre_unseal(
	           secret, sizeof secret, r->cfg.seal_key, j->sealed_secret)
	        != DRE_OK) {
		dre_error("import job %s: its callback secret cannot be "
		          "unsealed (imports.key_file changed?)",
		    j->id);
		return false;
	}
	// HMAC-SHA256(secret, "<t>.<body>")
	dre_buf msg = { 0 };
	dre_buf_append(&msg, ts, (size_t) tl);
	dre_buf_putc(&msg, '.');
	dre_buf_append(&msg, body, blen);
	dre_hmac_sha256(
	    mac, secret, strlen(secret), msg.data, msg.len, NULL, 0);
	OPENSSL_cleanse(secret, sizeof secret);
	dre_buf_free(&msg);
	dre_hex(hex, mac, sizeof mac);
	OPENSSL_cleanse(mac, sizeof mac);
	snprintf(sig, sizeof sig, "X-DRE-Signature: t=%s,v1=%s", ts, hex);
	snprintf(idh, sizeof idh, "X-DRE-Callback-Id: %s", cid);
	const char *hdrs[] = { sig, idh, NULL };
	long        code = 0;
	CURLcode    rc = dre_net_post(j->callback_url, body, blen, hdrs,
	       r->cfg.callback_insecure, CALLBACK_MS, &code);
	if (rc == CURLE_OK && code >= 200 && code < 300)
		return true;
	dre_warn("import job %s: callback %s attempt %lld failed (%s, HTTP "
	         "%ld)",
	    j->id, j->callback_url, (long long) attempt,
	    curl_easy_strerror(rc), code);
	return false;
}

static int64_t
cb_backoff(dre_ijob_reg *r, int64_t attempts)
{
	int64_t w = r->cfg.callback_backoff_ms > 0 ? r->cfg.callback_backoff_ms
	                                           : CALLBACK_BACKOFF;
	for (int64_t i = 1; i < attempts && w < CALLBACK_MAX_WAIT; i++)
		w *= 2;
	return w < CALLBACK_MAX_WAIT ? w : CALLBACK_MAX_WAIT;
}

// cb_send sends job tenant/jid's callback record when it is due; returns
// when the record is due next (INT64_MAX: gone).
static int64_t
cb_send(dre_ijob_reg *r, const char *tenant, const char *jid)
{
	char    kb[512], *val = NULL;
	size_t  vl = 0, kl = jkey(kb, sizeof kb, K_CALLBACK, tenant, jid);
	int64_t next = INT64_MAX;
	int64_t max = r->cfg.callback_attempts > 0 ? r->cfg.callback_attempts
	                                           : CALLBACK_ATTEMPTS;
	dre_arena *a = dre_arena_alloc(0);
	dre_json  *o = NULL;
	job        j;
	if (a == NULL || kl == 0
	    || dre_store_get(r->cfg.st, r->cfg.cf, kb, kl, &val, &vl) != DRE_OK
	    || dre_json_parse(&o, a, val, vl, DRE_JSON_MAX_DEPTH, NULL)
	        != DRE_OK) {
		dre_arena_free(a);
		free(val);
		return next;
	}
	const dre_json *cid = dre_json_get(o, "callbackId");
	const dre_json *body = dre_json_get(o, "body");
	int64_t         attempts = jint(o, "attempts"), due = jint(o, "due");
	int64_t         now = dre_now_ms();
	dre_batch      *b = dre_batch_alloc();
	if (due > now) {
		next = due;
	} else if (b != NULL) {
		bool ok = dre_json_is(cid, DRE_JSON_STRING)
		    && dre_json_is(body, DRE_JSON_STRING)
		    && job_get(r, tenant, jid, &j) == DRE_OK
		    && callback_post(r, &j, cid->str, body->str,
		        strlen(body->str), attempts + 1);
		attempts++;
		if (ok || attempts >= max
		    || !dre_json_is(cid, DRE_JSON_STRING)) {
			if (!ok)
				dre_error("import job %s/%s: callback given "
				          "up after %lld attempts",
				    tenant, jid, (long long) attempts);
			dre_batch_delete(b, r->cfg.st, r->cfg.cf, kb, kl);
		} else {
			next = dre_now_ms() + cb_backoff(r, attempts);
			cb_put(r, b, tenant, jid, cid->str, attempts, next,
			    body->str, strlen(body->str));
		}
		if (dre_store_write(r->cfg.st, b, true) != DRE_OK)
			next = dre_now_ms() + cb_backoff(r, 1);
	}
	dre_batch_free(b);
	dre_arena_free(a);
	free(val);
	return next;
}

typedef struct {
	char tenant[128];
	char id[DRE_IJOB_ID_MAX];
} jref;

// key_ref reads tenant \0 id from a key of the job records' form.
static bool
key_ref(const char *k, size_t kl, jref *out)
{
	const char *t = k + 1;
	size_t      tl = strnlen(t, kl - 1);
	if (tl + 2 >= kl || tl >= sizeof out->tenant
	    || kl - tl - 2 >= sizeof out->id)
		return false;
	snprintf(out->tenant, sizeof out->tenant, "%.*s", (int) tl, t);
	snprintf(
	    out->id, sizeof out->id, "%.*s", (int) (kl - tl - 2), t + tl + 1);
	return true;
}

// cb_pass sends the callbacks that are due; returns when the next is.
static int64_t
cb_pass(dre_ijob_reg *r)
{
	dre_store_iter *it = NULL;
	jref           *due = NULL;
	size_t          n = 0, cap = 0;
	int64_t         next = INT64_MAX, now = dre_now_ms();
	char            tag = K_CALLBACK;
	if (dre_store_iter_open(&it, r->cfg.st, r->cfg.cf, &tag, 1) != DRE_OK)
		return now + CALLBACK_BACKOFF;
	const char *k, *v;
	size_t      kl, vl;
	while (dre_store_iter_next(it, &k, &kl, &v, &vl)) {
		jref       ref;
		dre_arena *a = dre_arena_alloc(0);
		dre_json  *o = NULL;
		int64_t    at = 0;
		if (a != NULL
		    && dre_json_parse(&o, a, v, vl, DRE_JSON_MAX_DEPTH, NULL)
		        == DRE_OK)
			at = jint(o, "due");
		dre_arena_free(a);
		if (!key_ref(k, kl, &ref))
			continue;
		if (at > now) {
			next = at < next ? at : next;
			continue;
		}
		if (!grow(&due, n, &cap, sizeof *due))
			break;
		due[n++] = ref;
	}
	dre_store_iter_close(it);
	for (size_t i = 0; i < n; i++) {
		bool stop;
		pthread_mutex_lock(&r->mu);
		stop = r->stop;
		pthread_mutex_unlock(&r->mu);
		if (stop)
			break;
		int64_t at = cb_send(r, due[i].tenant, due[i].id);
		next = at < next ? at : next;
	}
	free(due);
	return next;
}

static void *
cb_thread(void *arg)
{
	dre_ijob_reg *r = arg;
	dre_thread_name("import:report", NULL);
	pthread_mutex_lock(&r->mu);
	while (!r->stop) {
		r->cb_kick = false;
		pthread_mutex_unlock(&r->mu);
		int64_t next = cb_pass(r);
		pthread_mutex_lock(&r->mu);
		int64_t now = dre_now_ms();
		if (next > now + CALLBACK_IDLE_MS)
			next = now + CALLBACK_IDLE_MS;
		while (!r->stop && !r->cb_kick && dre_now_ms() < next)
			cond_wait_ms(&r->cbcv, &r->mu, next - dre_now_ms());
	}
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

// finish stores the job's end state with its event and its callback
// record in one synced batch, removes the file and wakes the callback
// thread.
static void
finish(dre_ijob_reg *r, job *j, dre_ijob_status st, const char *why)
{
	cursor c;
	char   path[4200];
	cursor_get(r, j, &c);
	j->status = st;
	j->finished_at = dre_now_ms();
	j->total = c.row;
	if (why)
		snprintf(j->error, sizeof j->error, "%s", why);
	dre_batch *b = dre_batch_alloc();
	if (b == NULL)
		return;
	job_put(r, b, j);
	if (r->cfg.ob != NULL) {
		dre_import_finished_event e = { 0 };
		dre_buf                   ev = { 0 };
		char                      okey[300];
		dre_uuid_v4(e.event_id);
		e.tenant = j->tenant;
		e.occurred_at = j->finished_at;
		e.schema_version = 1;
		e.job_id = j->id;
		e.entity = j->entity;
		e.status = dre_ijob_status_name(st);
		e.total = c.row;
		e.succeeded = c.ok;
		e.failed = c.failed;
		e.error_message = j->error[0] ? j->error : NULL;
		int ol
		    = snprintf(okey, sizeof okey, "%s/%s", j->tenant, j->id);
		if (dre_avro_encode_import_finished(&ev, &e) == DRE_OK
		    && !ev.oom && ol > 0 && (size_t) ol < sizeof okey)
			dre_outbox_put(r->cfg.ob, b, DRE_TOPIC_IMPORTS, okey,
			    (size_t) ol, ev.data, ev.len);
		dre_buf_free(&ev);
	}
	if (j->callback_url[0]) {
		dre_buf body = { 0 };
		char    cid[DRE_UUID_LEN + 1];
		dre_uuid_v4(cid);
		job_doc(r, j, &body);
		if (!body.oom)
			cb_put(r, b, j->tenant, j->id, cid, 0, 0, body.data,
			    body.len);
		dre_buf_free(&body);
	}
	dre_err err = dre_store_write(r->cfg.st, b, true);
	dre_batch_free(b);
	if (err != DRE_OK) {
		dre_error("import job %s: cannot store its end: %s", j->id,
		    dre_strerror(err));
		return;
	}
	if (r->cfg.ob != NULL)
		dre_outbox_kick(r->cfg.ob);
	if (j->callback_url[0])
		cb_wake(r);
	file_path(r, j, path, sizeof path);
	unlink(path);
	dre_info("import job %s/%s %s: %lld rows, %lld ok, %lld failed%s%s",
	    j->tenant, j->id, dre_ijob_status_name(st), (long long) c.row,
	    (long long) c.ok, (long long) c.failed, why ? ": " : "",
	    why ? why : "");
}

// ---- the worker -----------------------------------------------------------

static const dre_ijob_entity *
entity_find(dre_ijob_reg *r, const char *name)
{
	for (const dre_ijob_entity *e = r->cfg.entities; e && e->name; e++)
		if (strcmp(e->name, name) == 0)
			return e;
	return NULL;
}

static size_t
row_error(dre_ijob_reg *r, dre_batch *b, const job *j, int64_t row,
    const dre_ijob_result *res)
{
	char      kb[600];
	dre_buf   v = { 0 };
	dre_jsonw w;
	size_t    kl = rowkey(kb, sizeof kb, K_ERROR, j->tenant, j->id, row);
	dre_jsonw_init(&w, &v);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kstr(&w, "jobId", j->id);
	dre_jsonw_kint(&w, "row", row);
	dre_jsonw_kstr(&w, "key", res->key[0] ? res->key : NULL);
	dre_jsonw_kstr(
	    &w, "code", res->code[0] ? res->code : "VALIDATION_FAILED");
	dre_jsonw_kstr(&w, "message", res->message);
	dre_jsonw_kstr(&w, "target", res->target[0] ? res->target : NULL);
	dre_jsonw_obj_end(&w);
	size_t n = kl + v.len;
	if (kl > 0 && !v.oom)
		dre_batch_put(b, r->cfg.st, r->cfg.cf, kb, kl, v.data, v.len);
	dre_buf_free(&v);
	return n;
}

static size_t
row_item(dre_ijob_reg *r, dre_batch *b, const job *j, int64_t row, bool ok,
    const dre_ijob_result *res)
{
	char      kb[600];
	dre_buf   v = { 0 };
	dre_jsonw w;
	size_t    kl = rowkey(kb, sizeof kb, K_ITEM, j->tenant, j->id, row);
	dre_jsonw_init(&w, &v);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kstr(&w, "jobId", j->id);
	dre_jsonw_kint(&w, "row", row);
	dre_jsonw_kstr(&w, "articleNumber", res->key[0] ? res->key : NULL);
	dre_jsonw_kstr(&w, "status",
	    !ok                ? "failed"
	        : res->created ? "created"
	                       : "updated");
	dre_jsonw_kstr(&w, "articleId", ok && res->id[0] ? res->id : NULL);
	dre_jsonw_kstr(&w, "error", ok ? NULL : res->message);
	dre_jsonw_obj_end(&w);
	size_t n = kl + v.len;
	if (kl > 0 && !v.oom)
		dre_batch_put(b, r->cfg.st, r->cfg.cf, kb, kl, v.data, v.len);
	dre_buf_free(&v);
	return n;
}

static bool
want_stop(dre_ijob_reg *r, bool *cancelled)
{
	pthread_mutex_lock(&r->mu);
	bool stop = r->stop;
	*cancelled = r->cancel;
	pthread_mutex_unlock(&r->mu);
	return stop || *cancelled;
}

static void
run_job(dre_ijob_reg *r, const char *tenant, const char *id)
{
	job              j;
	cursor           c;
	dre_ijob_reader *p;
	char             path[4200];
	dre_err          err;
	if (job_get(r, tenant, id, &j) != DRE_OK)
		return;
	if (j.status != DRE_IJOB_QUEUED && j.status != DRE_IJOB_RUNNING)
		return;
	const dre_ijob_entity *ent = entity_find(r, j.entity);
	if (ent == NULL) {
		finish(
		    r, &j, DRE_IJOB_FAILED, "the entity cannot be imported");
		return;
	}
	if (j.status == DRE_IJOB_QUEUED) {
		j.status = DRE_IJOB_RUNNING;
		j.started_at = dre_now_ms();
		dre_batch *b = dre_batch_alloc();
		if (b == NULL)
			return;
		job_put(r, b, &j);
		err = dre_store_write(r->cfg.st, b, true);
		dre_batch_free(b);
		if (err != DRE_OK)
			return;
	}
	cursor_get(r, &j, &c);
	file_path(r, &j, path, sizeof path);
	if ((err = dre_ijob_reader_open(
	         &p, path, j.format, c.offset, ent->csv_cell))
	    != DRE_OK) {
		dre_ijob_reader_close(p);
		finish(r, &j, DRE_IJOB_FAILED,
		    err == DRE_EIO ? "the uploaded file is gone"
		                   : "the file's header cannot be read");
		return;
	}
	bool        items = strcmp(j.source, "pos") == 0;
	bool        cancelled = false;
	dre_ijob_rd o = DRE_IJOB_RD_END;
	pend        pd = { dre_batch_alloc(), 0, 0 };
	bool        alloc_failed = pd.b == NULL;
	const char *text;
	size_t      tlen;
	int64_t     next;
	while (pd.b != NULL
	    && (o = dre_ijob_reader_next(p, &text, &tlen, &next))
	        == DRE_IJOB_RD_ROW) {
		if (want_stop(r, &cancelled))
			break;
		dre_ijob_result res;
		memset(&res, 0, sizeof res);
		dre_ijob_row row
		    = { j.tenant, j.principal, j.mode, text, tlen, c.row + 1 };
		rowctx x = { r, &j, c, false, &pd };
		x.next.offset = next;
		x.next.row = c.row + 1;
		x.next.ok = c.ok + 1;
		tl_row = &x;
		err = ent->apply(r->cfg.svc_arg, &row, &res);
		tl_row = NULL;
		bool now = false; // the row's item follows its write at once
		if (err == DRE_OK) {
			c = x.next;
			if (!x.used) { // applied without a write: the cursor
				cursor_put(r, pd.b, j.tenant, j.id, &c);
				pd.rows++;
			}
			if (items) {
				pd.bytes += row_item(
				    r, pd.b, &j, c.row, true, &res);
				now = x.used;
			}
		} else if (err == DRE_EINVAL) {
			c.offset = next;
			c.row++;
			c.failed++;
			pd.bytes += row_error(r, pd.b, &j, c.row, &res);
			if (items)
				pd.bytes += row_item(
				    r, pd.b, &j, c.row, false, &res);
			cursor_put(r, pd.b, j.tenant, j.id, &c);
			pd.rows++;
		} else {
			dre_error("import job %s: row %lld: %s; the job "
			          "resumes when the service restarts",
			    j.id, (long long) c.row + 1, dre_strerror(err));
			pend_flush(r, &pd);
			dre_batch_free(pd.b);
			dre_ijob_reader_close(p);
			return;
		}
		if ((now || pd.rows >= PEND_ROWS || pd.bytes >= PEND_BYTES)
		    && (err = pend_flush(r, &pd)) != DRE_OK) {
			dre_error(
			    "import job %s: %s", j.id, dre_strerror(err));
			dre_batch_free(pd.b);
			dre_ijob_reader_close(p);
			return;
		}
	}
	err = pend_flush(r, &pd);
	dre_batch_free(pd.b);
	if (err != DRE_OK) {
		dre_error(
		    "import job %s: %s; the job resumes when the service "
		    "restarts",
		    j.id, dre_strerror(err));
		dre_ijob_reader_close(p);
		return;
	}
	if (cancelled) {
		dre_ijob_reader_close(p);
		finish(r, &j, DRE_IJOB_CANCELLED, NULL);
		return;
	}
	if (r->stop || alloc_failed) { // resumed at the next start
		dre_ijob_reader_close(p);
		return;
	}
	if (o == DRE_IJOB_RD_FAIL) {
		char why[512];
		dre_ijob_reader_error(p, why, sizeof why);
		dre_ijob_reader_close(p);
		finish(r, &j, DRE_IJOB_FAILED, why);
		return;
	}
	dre_ijob_reader_close(p);
	cursor_get(r, &j, &c);
	finish(r, &j,
	    c.failed > 0 ? DRE_IJOB_COMPLETED_WITH_ERRORS : DRE_IJOB_COMPLETED,
	    NULL);
}

static void *
worker(void *arg)
{
	dre_ijob_reg *r = arg;
	dre_thread_name("import", NULL);
	pthread_mutex_lock(&r->mu);
	while (!r->stop) {
		if (r->head == NULL) {
			pthread_cond_wait(&r->cv, &r->mu);
			continue;
		}
		qent *q = r->head;
		r->head = q->next;
		if (r->head == NULL)
			r->tail = NULL;
		snprintf(r->running, sizeof r->running, "%s", q->id);
		snprintf(r->running_tenant, sizeof r->running_tenant, "%s",
		    q->tenant);
		r->cancel = false;
		r->done = false;
		pthread_mutex_unlock(&r->mu);
		run_job(r, q->tenant, q->id);
		free(q);
		pthread_mutex_lock(&r->mu);
		r->running[0] = 0;
		r->done = true;
		pthread_cond_broadcast(&r->cv);
	}
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

static void
enqueue(dre_ijob_reg *r, const char *tenant, const char *id)
{
	qent *q = calloc(1, sizeof *q);
	if (q == NULL)
		return;
	snprintf(q->tenant, sizeof q->tenant, "%s", tenant);
	snprintf(q->id, sizeof q->id, "%s", id);
	pthread_mutex_lock(&r->mu);
	if (r->tail)
		r->tail->next = q;
	else
		r->head = q;
	r->tail = q;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
}

// ---- open, close
// ------------------------------------------------------------

typedef struct {
	int64_t created;
	jref    ref;
} pending;

static int
pending_cmp(const void *a, const void *b)
{
	const pending *x = a, *y = b;
	return x->created < y->created ? -1 : x->created > y->created;
}

dre_err
dre_ijob_open(dre_ijob_reg **rp, const dre_ijob_cfg *cfg)
{
	dre_ijob_reg *r = calloc(1, sizeof *r);
	if (r == NULL)
		return DRE_ENOMEM;
	r->cfg = *cfg;
	snprintf(r->dir, sizeof r->dir, "%s", cfg->dir);
	if (dre_mkdirs(r->dir) != 0) {
		dre_error(
		    "imports: cannot create %s: %s", r->dir, strerror(errno));
		free(r);
		return DRE_EIO;
	}
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cv, NULL);
	pthread_cond_init(&r->cbcv, NULL);
	// Unfinished jobs, oldest first: queued again, resumed at the cursor.
	dre_store_iter *it = NULL;
	pending        *pv = NULL;
	size_t          np = 0, cap = 0;
	char            tag = K_JOB;
	if (dre_store_iter_open(&it, cfg->st, cfg->cf, &tag, 1) == DRE_OK) {
		const char *k, *v;
		size_t      kl, vl;
		while (dre_store_iter_next(it, &k, &kl, &v, &vl)) {
			job  j;
			jref ref;
			if (!key_ref(k, kl, &ref)
			    || job_get(r, ref.tenant, ref.id, &j) != DRE_OK
			    || (j.status != DRE_IJOB_QUEUED
			        && j.status != DRE_IJOB_RUNNING))
				continue;
			if (!grow(&pv, np, &cap, sizeof *pv))
				break;
			pv[np].created = j.created_at;
			pv[np].ref = ref;
			np++;
		}
		dre_store_iter_close(it);
	}
	if (np > 1)
		qsort(pv, np, sizeof *pv, pending_cmp);
	for (size_t i = 0; i < np; i++) {
		dre_info("import job %s/%s resumes", pv[i].ref.tenant,
		    pv[i].ref.id);
		enqueue(r, pv[i].ref.tenant, pv[i].ref.id);
	}
	free(pv);
	if (pthread_create(&r->th, NULL, worker, r) != 0) {
		pthread_mutex_destroy(&r->mu);
		pthread_cond_destroy(&r->cv);
		pthread_cond_destroy(&r->cbcv);
		free(r);
		return DRE_ENOMEM;
	}
	r->started = true;
	// Callbacks left by the last run are sent at once.
	if (pthread_create(&r->cbth, NULL, cb_thread, r) != 0) {
		dre_ijob_close(r);
		return DRE_ENOMEM;
	}
	r->cb_started = true;
	*rp = r;
	return DRE_OK;
}

dre_err
dre_ijob_start(dre_ijob_reg **rp, const dre_common_cfg *common,
    const char *svc, dre_store *st, int cf, const dre_ijob_entity *entities,
    void *svc_arg, dre_outbox *ob, const dre_ijob_opts *o)
{
	char sub[64], kdef[4200];
	snprintf(sub, sizeof sub, "%s-imports", svc);
	// The key file's default is beside the uploads' directory.
	snprintf(kdef, sizeof kdef, "%s/%s-imports.key",
	    common->data_dir && common->data_dir[0] ? common->data_dir : ".",
	    svc);
	char *dir = dre_svc_path(common, sub);
	char *kf = strdup(
	    o->key_file != NULL && o->key_file[0] ? o->key_file : kdef);
	dre_ijob_cfg c = { .svc = svc,
		.st = st,
		.cf = cf,
		.dir = dir,
		.entities = entities,
		.svc_arg = svc_arg,
		.ob = ob,
		.max_upload = o->max_upload,
		.min_free = o->min_free,
		.callback_insecure = o->callback_insecure,
		.callback_attempts = o->callback_attempts,
		.callback_backoff_ms = o->callback_backoff_ms };
	dre_err      err = dir == NULL || kf == NULL ? DRE_EIO
	         : dre_seal_key_load(c.seal_key, kf) != DRE_OK
	         ? DRE_EINVAL
	         : dre_ijob_open(rp, &c);
	OPENSSL_cleanse(c.seal_key, sizeof c.seal_key);
	free(dir);
	free(kf);
	if (err != DRE_OK)
		dre_error(
		    "cannot start the import jobs: %s", dre_strerror(err));
	return err;
}

void
dre_ijob_close(dre_ijob_reg *r)
{
	if (r == NULL)
		return;
	pthread_mutex_lock(&r->mu);
	r->stop = true;
	pthread_cond_broadcast(&r->cv);
	pthread_cond_broadcast(&r->cbcv);
	pthread_mutex_unlock(&r->mu);
	if (r->started)
		pthread_join(r->th, NULL);
	if (r->cb_started)
		pthread_join(r->cbth, NULL);
	while (r->head) {
		qent *q = r->head;
		r->head = q->next;
		free(q);
	}
	pthread_mutex_destroy(&r->mu);
	pthread_cond_destroy(&r->cv);
	pthread_cond_destroy(&r->cbcv);
	OPENSSL_cleanse(r->cfg.seal_key, sizeof r->cfg.seal_key);
	free(r);
}

// ---- create, upload
// ---------------------------------------------------------

static dre_err
job_create(dre_ijob_reg *r, const dre_ijob_spec *s, job *j)
{
	char uuid[DRE_UUID_LEN + 1];
	memset(j, 0, sizeof *j);
	dre_uuid_v4(uuid);
	snprintf(j->id, sizeof j->id, "%s-%s", r->cfg.svc, uuid);
	snprintf(j->tenant, sizeof j->tenant, "%s", s->tenant);
	snprintf(j->entity, sizeof j->entity, "%s", s->entity);
	// A longer name is cut before a character, never inside one.
	const char *name = s->name ? s->name : "";
	snprintf(j->name, sizeof j->name, "%.*s",
	    DRE_UTF8_CUT(name, sizeof j->name - 1));
	snprintf(
	    j->source, sizeof j->source, "%s", s->source ? s->source : "api");
	snprintf(j->principal, sizeof j->principal, "%s",
	    s->principal ? s->principal : "");
	snprintf(j->callback_url, sizeof j->callback_url, "%s",
	    s->callback_url ? s->callback_url : "");
	if (s->callback_secret != NULL && s->callback_secret[0]) {
		dre_buf sb = { 0 };
		dre_err e = dre_seal(&sb, r->cfg.seal_key, s->callback_secret);
		if (e == DRE_OK && sb.len >= sizeof j->sealed_secret)
			e = DRE_ETOOBIG;
		if (e == DRE_OK)
			memcpy(j->sealed_secret, sb.data, sb.len);
		dre_buf_free(&sb);
		if (e != DRE_OK)
			return e;
	}
	j->format = s->format;
	j->mode = s->mode;
	j->status = DRE_IJOB_WAITING_FOR_DATA;
	j->created_at = dre_now_ms();
	j->total = -1;
	dre_batch *b = dre_batch_alloc();
	if (b == NULL)
		return DRE_ENOMEM;
	job_put(r, b, j);
	cursor c = { 0, 0, 0, 0 };
	cursor_put(r, b, j->tenant, j->id, &c);
	dre_err err = dre_store_write(r->cfg.st, b, true);
	dre_batch_free(b);
	return err;
}

// room_for checks that len more bytes fit: imports.max_upload and the
// disk's free space (imports.min_free_bytes stays free).
static const char *
room_for(dre_ijob_reg *r, int64_t have, size_t len)
{
	struct statvfs vfs;
	if (r->cfg.max_upload > 0 && have + (int64_t) len > r->cfg.max_upload)
		return "the upload is larger than imports.max_upload";
	if (statvfs(r->dir, &vfs) == 0) {
		int64_t avail
		    = (int64_t) vfs.f_bavail * (int64_t) vfs.f_frsize;
		if (avail - (int64_t) len < r->cfg.min_free)
			return "not enough disk space for the upload";
	}
	return NULL;
}

// append_data appends data to the job's file; on no room the job FAILS
// (the file removed) and *why says why.
static dre_err
append_data(
    dre_ijob_reg *r, job *j, const void *data, size_t len, const char **why)
{
	char        path[4200];
	struct stat sb;
	file_path(r, j, path, sizeof path);
	int64_t have = stat(path, &sb) == 0 ? (int64_t) sb.st_size : 0;
	*why = room_for(r, have, len);
	if (*why != NULL) {
		unlink(path);
		j->status = DRE_IJOB_FAILED;
		j->finished_at = dre_now_ms();
		snprintf(j->error, sizeof j->error, "%s", *why);
		dre_batch *b = dre_batch_alloc();
		if (b) {
			job_put(r, b, j);
			dre_store_write(r->cfg.st, b, true);
			dre_batch_free(b);
		}
		return DRE_ETOOBIG;
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		return DRE_EIO;
	const char *p = data;
	size_t      left = len;
	while (left > 0) {
		ssize_t n = write(fd, p, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			close(fd);
			*why = "cannot write the upload (disk full?)";
			return DRE_EIO;
		}
		p += n;
		left -= (size_t) n;
	}
	close(fd);
	return DRE_OK;
}

// complete queues a job whose file is whole.
static dre_err
complete(dre_ijob_reg *r, job *j)
{
	char        path[4200];
	struct stat sb;
	file_path(r, j, path, sizeof path);
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	j->bytes = stat(path, &sb) == 0 ? (int64_t) sb.st_size : 0;
	j->status = DRE_IJOB_QUEUED;
	dre_batch *b = dre_batch_alloc();
	if (b == NULL)
		return DRE_ENOMEM;
	job_put(r, b, j);
	dre_err err = dre_store_write(r->cfg.st, b, true);
	dre_batch_free(b);
	if (err == DRE_OK)
		enqueue(r, j->tenant, j->id);
	return err;
}

dre_err
dre_ijob_submit(dre_ijob_reg *r, const dre_ijob_spec *spec, const void *data,
    size_t len, char *id)
{
	job         j;
	const char *why = NULL;
	dre_err     err;
	if (entity_find(r, spec->entity) == NULL)
		return DRE_EINVAL;
	if (room_for(r, 0, len) != NULL)
		return DRE_ETOOBIG;
	if ((err = job_create(r, spec, &j)) != DRE_OK)
		return err;
	if (len > 0 && (err = append_data(r, &j, data, len, &why)) != DRE_OK)
		return err;
	if ((err = complete(r, &j)) != DRE_OK)
		return err;
	snprintf(id, DRE_IJOB_ID_MAX, "%s", j.id);
	return DRE_OK;
}

// ---- the rpc methods
// ----------------------------------------------------------

static const dre_docapi_svc ijob_api = { "the import jobs", MINOR };

static void
reply_job(dre_docapi_req *d, int status, dre_ijob_reg *r, const job *j)
{
	dre_buf b = { 0 };
	job_doc(r, j, &b);
	if (b.oom)
		dre_docapi_internal(d, DRE_ENOMEM);
	else
		dre_docapi_reply_doc(d, status, b.data, b.len);
	dre_buf_free(&b);
}

// load reads the job the id parameter names; false once answered (404).
static bool
load(dre_ijob_reg *r, dre_docapi_req *d, const char *pname, job *j)
{
	const char *id = dre_rpc_param(d->call, pname);
	dre_err     err;
	if (id == NULL || id[0] == 0) {
		dre_docapi_invalid(d, pname, "the job id is missing");
		return false;
	}
	if ((err = job_get(r, d->call->tenant, id, j)) == DRE_ENOTFOUND) {
		dre_rpc_reply_error(d->rep, 404, "NOT_FOUND", NULL,
		    "import job '%s' not found", id);
		return false;
	}
	if (err != DRE_OK) {
		dre_docapi_internal(d, err);
		return false;
	}
	return true;
}

static bool
parse_enum(dre_docapi_req *d, const char *target, const char *v,
    const char *const *names, int n, int dflt, int *out)
{
	if (v == NULL || v[0] == 0) {
		*out = dflt;
		return true;
	}
	int i = name_index(names, n, v);
	if (i < 0) {
		dre_docapi_invalid(d, target,
		    "%s '%s' is not one of %s%s%s%s%s", target, v, names[0],
		    n > 1 ? ", " : "", n > 1 ? names[1] : "",
		    n > 2 ? ", " : "", n > 2 ? names[2] : "");
		return false;
	}
	*out = i;
	return true;
}

static bool
check_entity(dre_ijob_reg *r, dre_docapi_req *d, const char *e)
{
	if (e != NULL && entity_find(r, e) != NULL)
		return true;
	dre_buf names = { 0 };
	for (const dre_ijob_entity *x = r->cfg.entities; x && x->name; x++) {
		if (names.len)
			dre_buf_puts(&names, ", ");
		dre_buf_puts(&names, x->name);
	}
	dre_buf_putc(&names, 0);
	dre_docapi_invalid(d, "entity",
	    "entity '%s' cannot be imported here (%s)", e ? e : "",
	    names.data ? names.data : "");
	dre_buf_free(&names);
	return false;
}

bool
dre_ijob_name_ok(const char *name)
{
	size_t chars = 0;
	return name == NULL
	    || (dre_utf8_valid(name, strlen(name), &chars)
	        && chars <= DRE_IJOB_NAME_MAX);
}

static bool
check_name(dre_docapi_req *d, const char *name)
{
	if (dre_ijob_name_ok(name))
		return true;
	dre_docapi_invalid(
	    d, "name", "name is at most %d characters", DRE_IJOB_NAME_MAX);
	return false;
}

static bool
check_callback(
    dre_ijob_reg *r, dre_docapi_req *d, const char *url, const char *secret)
{
	char why[200];
	if (url == NULL || url[0] == 0)
		return true;
	if (!dre_net_url_check(
	        url, r->cfg.callback_insecure, why, sizeof why)) {
		dre_docapi_invalid(d, "callbackUrl", "%s", why);
		return false;
	}
	if (secret == NULL || strlen(secret) < 16 || strlen(secret) > 200) {
		dre_docapi_invalid(d, "callbackSecret",
		    "callbackSecret must be 16 to 200 characters: the "
		    "callback is signed with it");
		return false;
	}
	return true;
}

static const char *
body_str(const dre_json *in, const char *k, bool *bad)
{
	const dre_json *v = dre_json_get(in, k);
	if (v == NULL || v->type == DRE_JSON_NULL)
		return NULL;
	if (v->type != DRE_JSON_STRING) {
		*bad = true;
		return k;
	}
	return v->str;
}

static void
m_create(dre_ijob_reg *r, dre_docapi_req *d)
{
	static const char *const known[] = { "entity", "mode", "format",
		"callbackUrl", "callbackSecret", "name" };
	const dre_json *in = dre_docapi_body(d, DRE_DOCAPI_NOT_OBJECT);
	bool            bad = false;
	int             fmt, mode;
	job             j;
	if (in == NULL || !dre_docapi_strict(d, in, known, 6))
		return;
	dre_ijob_spec s = { d->call->tenant, d->call->principal,
		body_str(in, "entity", &bad), 0, 0, body_str(in, "name", &bad),
		"api", body_str(in, "callbackUrl", &bad),
		body_str(in, "callbackSecret", &bad) };
	const char   *fs = body_str(in, "format", &bad);
	const char   *ms = body_str(in, "mode", &bad);
	if (bad) {
		dre_docapi_invalid(d, NULL,
		    "entity, mode, format, name, callbackUrl and "
		    "callbackSecret are strings");
		return;
	}
	if (!check_entity(r, d, s.entity) || !check_name(d, s.name))
		return;
	if (fs == NULL) {
		dre_docapi_invalid(
		    d, "format", "format is required: JSON, NDJSON or CSV");
		return;
	}
	if (!parse_enum(d, "format", fs, fmt_names, 3, 0, &fmt)
	    || !parse_enum(d, "mode", ms, mode_names, 2, 0, &mode)
	    || !check_callback(r, d, s.callback_url, s.callback_secret))
		return;
	s.format = (dre_ijob_fmt) fmt;
	s.mode = (dre_ijob_mode) mode;
	dre_err err = job_create(r, &s, &j);
	if (err != DRE_OK) {
		dre_docapi_internal(d, err);
		return;
	}
	reply_job(d, 201, r, &j);
}

static void
m_submit(dre_ijob_reg *r, dre_docapi_req *d)
{
	int           fmt, mode;
	char          id[DRE_IJOB_ID_MAX];
	job           j;
	const char   *cu = dre_rpc_param(d->call, "callback_url");
	const char   *cs = dre_rpc_param(d->call, "callback_secret");
	dre_ijob_spec s = { d->call->tenant, d->call->principal,
		dre_rpc_param(d->call, "entity"), 0, 0,
		dre_rpc_param(d->call, "name"),
		dre_rpc_param(d->call, "source"), cu && cu[0] ? cu : NULL,
		cs };
	if (!check_entity(r, d, s.entity) || !check_name(d, s.name))
		return;
	if (!parse_enum(d, "format", dre_rpc_param(d->call, "format"),
	        fmt_names, 3, 0, &fmt)
	    || !parse_enum(d, "mode", dre_rpc_param(d->call, "mode"),
	        mode_names, 2, 0, &mode)
	    || !check_callback(r, d, s.callback_url, s.callback_secret))
		return;
	s.format = (dre_ijob_fmt) fmt;
	s.mode = (dre_ijob_mode) mode;
	if (s.source != NULL && s.source[0] == 0)
		s.source = NULL;
	dre_err err = dre_ijob_submit(r, &s,
	    d->call->body ? d->call->body : (const uint8_t *) "",
	    d->call->body_len, id);
	if (err == DRE_ETOOBIG) {
		dre_rpc_reply_error(d->rep, 413, "PAYLOAD_TOO_LARGE", NULL,
		    "the data does not fit: imports.max_upload or the disk's "
		    "free space");
		return;
	}
	if (err != DRE_OK || job_get(r, d->call->tenant, id, &j) != DRE_OK) {
		dre_docapi_internal(d, err != DRE_OK ? err : DRE_ESTORE);
		return;
	}
	reply_job(d, 202, r, &j);
}

static bool
waiting(dre_docapi_req *d, const job *j)
{
	if (j->status == DRE_IJOB_WAITING_FOR_DATA)
		return true;
	dre_rpc_reply_error(d->rep, 409, "CONFLICT", "status",
	    "import job '%s' is %s: it takes no more data", j->id,
	    dre_ijob_status_name(j->status));
	return false;
}

static void
m_append(dre_ijob_reg *r, dre_docapi_req *d)
{
	job         j;
	const char *why = NULL;
	if (!load(r, d, "id", &j) || !waiting(d, &j))
		return;
	dre_err err
	    = append_data(r, &j, d->call->body, d->call->body_len, &why);
	if (err == DRE_ETOOBIG) {
		dre_rpc_reply_error(d->rep, 413, "PAYLOAD_TOO_LARGE", NULL,
		    "%s: import job '%s' FAILED, nothing was imported", why,
		    j.id);
		return;
	}
	if (err != DRE_OK) {
		dre_rpc_reply_error(d->rep, 507, "INSUFFICIENT_STORAGE", NULL,
		    "%s", why ? why : "cannot store the upload");
		return;
	}
	dre_buf *b = &d->rep->body;
	dre_buf_reset(b);
	dre_buf_printf(
	    b, "{\"id\":\"%s\",\"received\":%zu}", j.id, d->call->body_len);
	dre_rpc_reply_json(d->rep);
}

static void
m_complete(dre_ijob_reg *r, dre_docapi_req *d)
{
	job j;
	if (!load(r, d, "id", &j) || !waiting(d, &j))
		return;
	dre_err err = complete(r, &j);
	if (err != DRE_OK) {
		dre_docapi_internal(d, err);
		return;
	}
	reply_job(d, 202, r, &j);
}

// m_abort ends a job whose upload the gateway refused part-way (the
// caller's API key revoked, or its role taken, while the data streamed):
// FAILED, the file removed, nothing imported. 409 once the data is
// complete.
static void
m_abort(dre_ijob_reg *r, dre_docapi_req *d)
{
	job j;
	if (!load(r, d, "id", &j) || !waiting(d, &j))
		return;
	finish(r, &j, DRE_IJOB_FAILED,
	    "the upload was refused part-way: the caller's credentials "
	    "are no longer valid for it; nothing was imported");
	if (load(r, d, "id", &j))
		reply_job(d, 200, r, &j);
}

// m_get answers the job; pos_only: seed 002's ArticleImportJobs, which
// shows the jobs of POST /pos/articles/import-batch only.
static void
m_get(dre_ijob_reg *r, dre_docapi_req *d, bool pos_only)
{
	job j;
	if (!load(r, d, "id", &j))
		return;
	if (pos_only && strcmp(j.source, "pos") != 0) {
		dre_rpc_reply_error(d->rep, 404, "NOT_FOUND", NULL,
		    "article import job '%s' not found (jobs of "
		    "/api/v1/ImportJobs are read there)",
		    j.id);
		return;
	}
	reply_job(d, 200, r, &j);
}

static void
m_cancel(dre_ijob_reg *r, dre_docapi_req *d)
{
	job j;
	if (!load(r, d, "id", &j))
		return;
	if (j.status >= DRE_IJOB_COMPLETED) {
		dre_rpc_reply_error(d->rep, 409, "CONFLICT", "status",
		    "import job '%s' is %s already", j.id,
		    dre_ijob_status_name(j.status));
		return;
	}
	pthread_mutex_lock(&r->mu);
	bool running = strcmp(r->running, j.id) == 0
	    && strcmp(r->running_tenant, j.tenant) == 0;
	if (running) {
		r->cancel = true;
		int64_t until = dre_now_ms() + 10000;
		while (!r->done && dre_now_ms() < until)
			cond_wait_ms(&r->cv, &r->mu, 50);
	} else {
		// Not started: out of the queue, then finished here.
		for (qent **q = &r->head; *q; q = &(*q)->next)
			if (strcmp((*q)->id, j.id) == 0) {
				qent *x = *q;
				*q = x->next;
				free(x);
				break;
			}
		r->tail = r->head;
		while (r->tail && r->tail->next)
			r->tail = r->tail->next;
	}
	pthread_mutex_unlock(&r->mu);
	if (!running)
		finish(r, &j, DRE_IJOB_CANCELLED, NULL);
	if (!load(r, d, "id", &j))
		return;
	reply_job(d, 200, r, &j);
}

// list_prefix answers the tenant's records of tag (under job id when not
// NULL) as an OData list with the given members.
static void
list_records(dre_ijob_reg *r, dre_docapi_req *d, char tag, const char *jid,
    const char *const *fields, size_t nf)
{
	dre_odata_fields qf = { fields, nf, fields, nf };
	dre_docapi_list  l;
	char             kb[600];
	size_t           kl;
	if (jid != NULL) {
		kl = jkey(kb, sizeof kb, tag, d->call->tenant, jid);
		if (kl > 0)
			kb[kl++] = 0;
	} else {
		kl = dre_key(kb, sizeof kb, tag, 1, d->call->tenant);
		if (kl > 0)
			kb[kl++] = 0;
	}
	if (!dre_docapi_list_begin(&l, d, &qf, LIST_TOP, LIST_MAX)) {
		dre_docapi_list_free(&l);
		return;
	}
	dre_store_iter *it = NULL;
	if (kl == 0
	    || dre_store_iter_open(&it, r->cfg.st, r->cfg.cf, kb, kl)
	        != DRE_OK) {
		dre_docapi_list_free(&l);
		dre_docapi_internal(d, DRE_ESTORE);
		return;
	}
	const char *k, *v;
	size_t      klen, vl;
	bool        ok = true;
	while (ok && dre_store_iter_next(it, &k, &klen, &v, &vl)) {
		if (tag != K_JOB) {
			ok = dre_docapi_list_add(&l, v, vl);
			continue;
		}
		char id[DRE_IJOB_ID_MAX];
		snprintf(id, sizeof id, "%.*s", (int) (klen - kl), k + kl);
		job     j;
		dre_buf b = { 0 };
		if (job_get(r, d->call->tenant, id, &j) == DRE_OK) {
			job_doc(r, &j, &b);
			ok = !b.oom && dre_docapi_list_add(&l, b.data, b.len);
		}
		dre_buf_free(&b);
	}
	dre_store_iter_close(it);
	dre_docapi_list_end(&l);
}

static const char *const job_fields[]
    = { "id", "entity", "mode", "format", "name", "status", "total",
	      "processed", "succeeded", "failed", "progressPercent",
	      "bytesTotal", "bytesProcessed", "createdAt", "startedAt",
	      "finishedAt", "errorMessage", "callbackUrl", "uploadUrl" };

const dre_odata_fields dre_ijob_fields
    = { job_fields, sizeof job_fields / sizeof job_fields[0], job_fields,
	      sizeof job_fields / sizeof job_fields[0] };

static void
m_list(dre_ijob_reg *r, dre_docapi_req *d)
{
	list_records(r, d, K_JOB, NULL, job_fields,
	    sizeof job_fields / sizeof job_fields[0]);
}

static const char *const ef[]
    = { "jobId", "row", "key", "code", "message", "target" };
static const char *const itf[]
    = { "jobId", "row", "articleNumber", "status", "articleId", "error" };
const dre_odata_fields dre_ijob_error_fields = { ef, 6, ef, 6 };
const dre_odata_fields dre_ijob_item_fields = { itf, 6, itf, 6 };

static void
m_rows(dre_ijob_reg *r, dre_docapi_req *d, char tag)
{
	job j;
	if (!load(r, d, "jobId", &j))
		return;
	if (tag == K_ERROR)
		list_records(r, d, tag, j.id, ef, 6);
	else
		list_records(r, d, tag, j.id, itf, 6);
}

void
dre_ijob_dispatch(
    dre_ijob_reg *r, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	dre_docapi_req d;
	const char    *m = strchr(call->method, '.');
	m = m ? m + 1 : call->method;
	if (dre_docapi_begin(&d, &ijob_api, call, rep)) {
		if (r == NULL)
			dre_rpc_reply_error(rep, 503, "UNAVAILABLE", NULL,
			    "import jobs are not available");
		else if (strcmp(m, "ImportJobs.create") == 0)
			m_create(r, &d);
		else if (strcmp(m, "ImportJobs.submit") == 0)
			m_submit(r, &d);
		else if (strcmp(m, "ImportJobs.append") == 0)
			m_append(r, &d);
		else if (strcmp(m, "ImportJobs.complete") == 0)
			m_complete(r, &d);
		else if (strcmp(m, "ImportJobs.abort") == 0)
			m_abort(r, &d);
		else if (strcmp(m, "ImportJobs.get") == 0)
			m_get(r, &d, false);
		else if (strcmp(m, "ArticleImportJobs.get") == 0)
			m_get(r, &d, true);
		else if (strcmp(m, "ImportJobs.list") == 0)
			m_list(r, &d);
		else if (strcmp(m, "ImportJobs.cancel") == 0)
			m_cancel(r, &d);
		else if (strcmp(m, "ImportJobErrors.list") == 0)
			m_rows(r, &d, K_ERROR);
		else if (strcmp(m, "ImportJobItems.list") == 0)
			m_rows(r, &d, K_ITEM);
		else
			dre_rpc_reply_error(rep, 404, "NOT_FOUND", NULL,
			    "no method %s", call->method);
	}
	dre_docapi_end(&d);
}
