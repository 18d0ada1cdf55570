// catalog/repo.c -- entity storage: one synced batch per change with its
// dre.master.* event.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "dre/audit.h"
#include "dre/auth.h"
#include "dre/avro.h"
#include "dre/buf.h"
#include "dre/clock.h"
#include "dre/jsonw.h"
#include "dre/log.h"
#include "dre/outbox.h"
#include "dre/topics.h"
#include "dre/uuid.h"

static const struct {
	const char *name;
	const char *topic;
	const char *entity; // in the audit log
} kinds[CAT_NKINDS] = {
	[CAT_PROMOTION] = { "PROMOTION", DRE_TOPIC_PROMOTIONS, "Promotion" },
	[CAT_POS_GROUP] = { "POS_GROUP", DRE_TOPIC_POS_GROUPS, "PosGroup" },
	[CAT_ARTICLE_GROUP]
	= { "ARTICLE_GROUP", DRE_TOPIC_ARTICLE_GROUPS, "ArticleGroup" },
	[CAT_ARTICLE] = { "ARTICLE", DRE_TOPIC_ARTICLES, "Article" },
	// Settings change how promotions are evaluated: they travel with
	// them, in order, to every evaluator.
	[CAT_TENANT_SETTINGS]
	= { "TENANT_SETTINGS", DRE_TOPIC_PROMOTIONS, "TenantSettings" },
	// Campaigns group promotions for people (calendars, reports): a
	// topic of their own, which the evaluators do not read.
	[CAT_CAMPAIGN] = { "CAMPAIGN", DRE_TOPIC_CAMPAIGNS, "Campaign" },
};

static const char META_VERSION[] = "version";

const char *
cat_kind_name(cat_kind k)
{
	return kinds[k].name;
}

const char *
cat_audit_entity(cat_kind k)
{
	return kinds[k].entity;
}

const char *
cat_kind_topic(cat_kind k)
{
	return kinds[k].topic;
}

int
cat_kind_parse(const char *s, size_t n)
{
	for (int i = 0; i < CAT_NKINDS; i++)
		if (strlen(kinds[i].name) == n
		    && memcmp(kinds[i].name, s, n) == 0)
			return i;
	return -1;
}

size_t
cat_key(char *out, size_t cap, const char *tenant, cat_kind k, const char *key)
{
	return dre_key(out, cap, 0, 3, tenant, kinds[k].name, key);
}

static size_t
index_key(char *out, size_t cap, const char *tenant, cat_kind k,
    const char *field, const char *value)
{
	return dre_key(out, cap, 0, 4, tenant, kinds[k].name, field, value);
}

dre_err
cat_open(cat *c, const char *path, const dre_kvlist *kafka)
{
	static const char *const cfs[]
	    = { "entities", "index", "meta", "outbox", "audit", "jobs" };
	dre_store_cfg cfg = { .path = path, .cfs = cfs, .ncfs = 6 };
	dre_err       err;
	char         *val = NULL;
	size_t        vlen = 0;

	memset(c, 0, sizeof *c);
	c->kafka = kafka;
	c->kafka_timeout_ms = 2000;
	c->md_max_bytes = 1 << 20;
	c->md_max_depth = 32;
	pthread_mutex_init(&c->mu, NULL);
	if ((err = dre_store_open(&c->st, &cfg)) != DRE_OK)
		return err;
	err = dre_store_get(c->st, CF_META, META_VERSION,
	    sizeof META_VERSION - 1, &val, &vlen);
	if (err == DRE_OK && vlen == 8)
		c->version = dre_be64_get(val);
	free(val);
	if (err != DRE_OK && err != DRE_ENOTFOUND)
		goto fail;
	if ((err = dre_outbox_open(&c->ob, c->st, CF_OUTBOX, kafka)) != DRE_OK)
		goto fail;
	dre_info("catalog store %s open at version %lld", path,
	    (long long) c->version);
	return DRE_OK;
fail:
	dre_store_close(c->st);
	c->st = NULL;
	return err;
}

void
cat_close(cat *c)
{
	dre_auth_event_hook(NULL, NULL); // cat_audit_auth_event's store
	dre_outbox_close(c->ob);
	c->ob = NULL;
	if (c->st != NULL)
		cat_snapshots_close(c);
	dre_store_close(c->st);
	c->st = NULL;
	pthread_mutex_destroy(&c->mu);
}

dre_err
cat_get(cat *c, const char *tenant, cat_kind k, const char *key, char **docp,
    size_t *lenp, int64_t *versionp)
{
	char    kb[1024];
	size_t  kl = cat_key(kb, sizeof kb, tenant, k, key);
	char   *val = NULL;
	size_t  vlen = 0;
	dre_err err;
	if (kl == 0)
		return DRE_ENOTFOUND;
	if ((err = dre_store_get(c->st, CF_ENTITIES, kb, kl, &val, &vlen))
	    != DRE_OK)
		return err;
	if (vlen < 8) {
		free(val);
		return DRE_ESTORE;
	}
	if (versionp)
		*versionp = dre_be64_get(val);
	memmove(val, val + 8, vlen - 8);
	val[vlen - 8] = 0;
	*docp = val;
	if (lenp)
		*lenp = vlen - 8;
	return DRE_OK;
}

dre_err
cat_index_get(cat *c, const char *tenant, cat_kind k, const char *field,
    const char *value, char **keyp)
{
	char    kb[1024];
	size_t  kl = index_key(kb, sizeof kb, tenant, k, field, value);
	char   *val = NULL;
	size_t  vlen = 0;
	dre_err err;
	if (kl == 0)
		return DRE_ENOTFOUND;
	if ((err = dre_store_get(c->st, CF_INDEX, kb, kl, &val, &vlen))
	    != DRE_OK)
		return err;
	char *s = malloc(vlen + 1);
	if (s == NULL) {
		free(val);
		return DRE_ENOMEM;
	}
	memcpy(s, val, vlen);
	s[vlen] = 0;
	free(val);
	*keyp = s;
	return DRE_OK;
}

// put_audit adds the audit record of a change (the stored document before
// it, doc after it) and the approval state au carries to b.
static dre_err
put_audit(cat *c, dre_batch *b, const char *tenant, cat_kind k,
    const char *key, const char *kb, size_t kl, const char *doc, size_t len,
    const cat_audit *au)
{
	char   *old = NULL;
	size_t  olen = 0;
	dre_err err = dre_store_get(c->st, CF_ENTITIES, kb, kl, &old, &olen);
	if (err != DRE_OK && err != DRE_ENOTFOUND)
		return err;
	if (err == DRE_OK && olen < 8) {
		free(old);
		return DRE_ESTORE;
	}
	// The stored document after its version; doc as it will be.
	const dre_buf before
	    = { .data = old ? old + 8 : NULL, .len = old ? olen - 8 : 0 };
	const dre_buf after = { .data = (char *) doc, .len = doc ? len : 0 };
	err = dre_audit_change(b, c->st, CF_AUDIT, tenant, au->actor,
	    kinds[k].entity, key, au->action, old != NULL ? &before : NULL,
	    doc != NULL ? &after : NULL, au->details);
	free(old);
	if (err == DRE_OK && au->approval != NULL) {
		char   ak[1024];
		size_t al = dre_key(
		    ak, sizeof ak, CAT_META_APPROVAL, 2, tenant, key);
		if (al == 0)
			return DRE_ETOOBIG;
		dre_batch_put(
		    b, c->st, CF_META, ak, al, au->approval, au->approval_len);
	}
	return err;
}

dre_err
cat_put_locked(cat *c, const char *tenant, cat_kind k, const char *key,
    const char *doc, size_t len, const cat_index *add, size_t nadd,
    const cat_index *del, size_t ndel, const cat_audit *au, int64_t *versionp)
{
	char             kb[1024], ib[1024], okey[1024];
	size_t           kl = cat_key(kb, sizeof kb, tenant, k, key);
	int64_t          version = c->version + 1;
	unsigned char    vb[8];
	dre_buf          val = { 0 }, ev = { 0 };
	dre_master_event e = { 0 };
	dre_batch       *b;
	dre_err          err;

	if (kl == 0)
		return DRE_ETOOBIG;
	if ((b = dre_batch_alloc()) == NULL)
		return DRE_ENOMEM;
	dre_be64_put(vb, version);
	if (doc != NULL) {
		dre_buf_append(&val, vb, 8);
		dre_buf_append(&val, doc, len);
		dre_batch_put(
		    b, c->st, CF_ENTITIES, kb, kl, val.data, val.len);
	} else {
		dre_batch_delete(b, c->st, CF_ENTITIES, kb, kl);
	}
	for (size_t i = 0; i < ndel; i++) {
		size_t il = index_key(
		    ib, sizeof ib, tenant, k, del[i].field, del[i].value);
		if (il > 0)
			dre_batch_delete(b, c->st, CF_INDEX, ib, il);
	}
	for (size_t i = 0; i < nadd; i++) {
		size_t il = index_key(
		    ib, sizeof ib, tenant, k, add[i].field, add[i].value);
		if (il > 0)
			dre_batch_put(
			    b, c->st, CF_INDEX, ib, il, key, strlen(key));
	}
	dre_batch_put(
	    b, c->st, CF_META, META_VERSION, sizeof META_VERSION - 1, vb, 8);
	if (au != NULL
	    && (err = put_audit(c, b, tenant, k, key, kb, kl, doc, len, au))
	        != DRE_OK)
		goto out;

	dre_uuid_v4(e.event_id);
	e.tenant = tenant;
	e.occurred_at = dre_now_ms();
	e.schema_version = 3;
	e.entity_kind = kinds[k].name;
	e.entity_id = key;
	e.op = doc != NULL ? "UPSERT" : "DELETE";
	e.version = version;
	e.document = doc;
	e.document_len = doc != NULL ? len : 0;
	if ((err = dre_avro_encode_master(&ev, &e)) != DRE_OK)
		goto out;
	int ol = snprintf(okey, sizeof okey, "%s/%s", tenant, key);
	if (ol < 0 || (size_t) ol >= sizeof okey) {
		err = DRE_ETOOBIG;
		goto out;
	}
	dre_outbox_put(
	    c->ob, b, kinds[k].topic, okey, (size_t) ol, ev.data, ev.len);
	if (val.oom || ev.oom) {
		err = DRE_ENOMEM;
		goto out;
	}
	// An import row's cursor rides in the same batch (dre/importjob.h);
	// the job syncs when it finishes, a process crash loses nothing.
	bool in_job = dre_ijob_enlist(b);
	if ((err = dre_store_write(c->st, b, !in_job)) != DRE_OK)
		goto out;
	c->version = version;
	dre_outbox_kick(c->ob);
	if (versionp)
		*versionp = version;
out:
	dre_batch_free(b);
	dre_buf_free(&val);
	dre_buf_free(&ev);
	return err;
}

// Auth events (dre_auth_event: API clients and keys created, revoked or
// deleted, tokens issued, signing keys rotated) as audit records: entity
// from the event's first part, action from its second, the subject as the
// entity id, the source in details.
void
cat_audit_auth_event(void *arg, const char *event, const char *tenant,
    const char *principal, const char *subject, const char *source)
{
	static const struct {
		const char *prefix, *entity;
	} names[] = { { "apiclient", "ApiClient" }, { "apikey", "ApiKey" },
		{ "token", "Token" }, { "signingkey", "SigningKey" },
		{ "login", "Login" } };
	cat          *c = arg;
	const char   *dot = strchr(event, '.');
	size_t        pl = dot ? (size_t) (dot - event) : strlen(event);
	dre_audit_rec rec = { .tenant = tenant ? tenant : "",
		.actor = principal && principal[0] ? principal : NULL,
		.entity = "Auth",
		.entity_id = subject && subject[0] ? subject : NULL,
		.action = dot ? dot + 1 : event };
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (strlen(names[i].prefix) == pl
		    && memcmp(names[i].prefix, event, pl) == 0)
			rec.entity = names[i].entity;
	dre_buf   det = { 0 };
	dre_jsonw w;
	dre_jsonw_init(&w, &det);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kstr(&w, "event", event);
	dre_jsonw_kstr(&w, "source", source && source[0] ? source : NULL);
	dre_jsonw_obj_end(&w);
	rec.details = det.data;
	rec.details_len = det.len;
	dre_batch *b = det.oom ? NULL : dre_batch_alloc();
	dre_err    err = b == NULL
	       ? DRE_ENOMEM
	       : dre_audit_put(b, c->st, CF_AUDIT, 0, &rec, NULL);
	if (err == DRE_OK)
		err = dre_store_write(c->st, b, true);
	if (err != DRE_OK)
		dre_error("audit: auth event %s not recorded: %s", event,
		    dre_strerror(err));
	dre_batch_free(b);
	dre_buf_free(&det);
}
