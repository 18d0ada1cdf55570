// importjob.h -- bulk import jobs (PRODUCT-DECISIONS §11), run by the
// service that owns the entity (catalog: Articles, ArticleGroups,
// PosGroups, Promotions; coupon: CouponCodes, ...).
//
// A job is uploaded to a file in the owner's data directory, then a worker
// thread of the owner reads it row by row (JSON array, NDJSON or CSV with a
// header row) and hands each row, as one JSON object, to the entity's
// apply callback -- which runs the owner's single-write code path, so a
// row is validated exactly like a single write. The job's cursor (byte
// offset, row number, counters) is written in the SAME RocksDB batch as
// the row's effect: the owner's write path calls dre_ijob_enlist(b) on the
// batch it is about to write. A rejected row is recorded as an
// ImportJobError with the cursor in one batch. After a crash the worker
// resumes at the cursor: no row is applied twice, none skipped.
//
// ---- The internal API (nng, every owner; the gateway's routes use it) ----
//
//   <svc>.ImportJobs.create   JSON {entity, mode?, format, callbackUrl?,
//                             callbackSecret?, name?} -> 201 the job
//                             {id, status: WAITING_FOR_DATA, uploadUrl, ...}
//   <svc>.ImportJobs.append   params id, offset; body = the next bytes of
//                             the file -> 200 {id, received}; 409 when the
//                             job is not WAITING_FOR_DATA; 413 (and the job
//                             FAILED, file removed) past imports.max_upload
//                             or below imports.min_free_bytes of disk
//   <svc>.ImportJobs.complete params id -> 202 the job, QUEUED
//   <svc>.ImportJobs.abort    params id -> 200 the job, FAILED, its data
//                             removed (the gateway refused the rest of an
//                             upload: credentials revoked mid-stream); 409
//                             when it is not WAITING_FOR_DATA
//   <svc>.ImportJobs.submit   params entity, format, mode?, name?, source?,
//                             callback_url?, callback_secret?; body = the
//                             whole file -> 202 the job, QUEUED (create +
//                             append + complete in one call: for callers
//                             with the data in hand, e.g. S/4 DRFOUT)
//   <svc>.ImportJobs.get      param id -> 200 the job
//   <svc>.ImportJobs.list     OData list of the tenant's jobs
//   <svc>.ImportJobs.cancel   param id -> 200 the job (CANCELLED; 409 when
//                             finished already)
//   <svc>.ImportJobErrors.list  param jobId (and OData) -> the row errors
//   <svc>.ImportJobItems.list   param jobId -> per-row results (jobs whose
//                             source asked for items: seed 002 import-batch)
//
// Job ids are "<svc>-<uuid>" (catalog-…, coupon-…): the gateway routes a
// job's calls to its owner by that prefix. In-process, an owner calls
// dre_ijob_submit (below) directly.
#ifndef DRE_IMPORTJOB_H
#define DRE_IMPORTJOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dre/buf.h"
#include "dre/config.h"
#include "dre/err.h"
#include "dre/odata.h"
#include "dre/outbox.h"
#include "dre/rpc.h"
#include "dre/seal.h"
#include "dre/store.h"

typedef enum {
	DRE_IJOB_WAITING_FOR_DATA = 0,
	DRE_IJOB_QUEUED,
	DRE_IJOB_RUNNING,
	DRE_IJOB_COMPLETED,
	DRE_IJOB_COMPLETED_WITH_ERRORS,
	DRE_IJOB_FAILED,
	DRE_IJOB_CANCELLED,
} dre_ijob_status;

const char *dre_ijob_status_name(dre_ijob_status s);

typedef enum { DRE_IJOB_UPSERT = 0, DRE_IJOB_CREATE } dre_ijob_mode;
typedef enum { DRE_IJOB_JSON = 0, DRE_IJOB_NDJSON, DRE_IJOB_CSV } dre_ijob_fmt;
// dre_ijob_fmt_name: "JSON", "NDJSON" or "CSV".
const char *dre_ijob_fmt_name(dre_ijob_fmt f);

// One row handed to an entity's apply callback.
typedef struct {
	const char   *tenant;
	const char   *principal; // who created the job
	dre_ijob_mode mode;
	const char   *json; // the row as a JSON object (CSV: built from it)
	size_t        len;
	int64_t       row; // 1-based
} dre_ijob_row;

// What a row's apply tells: on a rejected row code/target/message (the
// single write's error) and the row's key when known; on success the key,
// the entity id and whether it was created (for per-row items).
typedef struct {
	char key[128];
	char id[64];
	bool created;
	char code[48];
	char target[128];
	char message[512];
	int  status; // the single write's HTTP status when rejected
} dre_ijob_result;

// A call as an owner's rpc handler sees it, made from a row: the row is
// the body, the job's tenant and principal the caller's, id (NULL: none)
// the "id" parameter. For owners whose row goes through a handler whose
// answer dre_ijob_run cannot read (e.g. a bulk handler).
typedef struct {
	Dre__RpcRequest rq;
	Dre__Param      pid;
	Dre__Param     *ps[1];
	dre_rpc_call    call;
} dre_ijob_call;
void dre_ijob_call_init(
    dre_ijob_call *c, const dre_ijob_row *row, const char *id);

// dre_ijob_run applies a row through an owner's rpc handler fn (its
// single-write route: create, or update with id): the row is the body, the
// job's tenant and principal the caller's. A 2xx is DRE_OK (res->id and
// res->key from the answer's "id" and key_field), a 4xx DRE_EINVAL with
// the answer's error in res, a 5xx DRE_EUNAVAIL.
dre_err dre_ijob_run(dre_rpc_fn fn, void *svc, const dre_ijob_row *row,
    const char *id, const char *key_field, dre_ijob_result *res);
// dre_ijob_row_key copies the row's string member k into res->key.
void dre_ijob_row_key(
    const dre_ijob_row *row, const char *k, dre_ijob_result *res);

// How a CSV cell becomes a JSON value for a column.
typedef enum {
	DRE_IJOB_CELL_STRING = 0, // a JSON string
	DRE_IJOB_CELL_RAW, // a number, true/false or a JSON array/object as
	                   // written (a string when it is not valid JSON)
	DRE_IJOB_CELL_LIST, // ";"-separated strings -> a JSON array
} dre_ijob_cell;

// One importable entity of an owner: a row of its table.
typedef struct {
	const char *name; // "Articles": the public collection name
	// apply writes one row through the owner's single-write path.
	// DRE_OK: applied; DRE_EINVAL: rejected (res->code etc. set); any
	// other error stops the job (it is retried when the service
	// restarts).
	dre_err (*apply)(
	    void *svc, const dre_ijob_row *row, dre_ijob_result *res);
	// The CSV type of a column (NULL: all strings).
	dre_ijob_cell (*csv_cell)(const char *column);
} dre_ijob_entity;

typedef struct dre_ijob_reg dre_ijob_reg;

typedef struct {
	const char            *svc; // "catalog": the rpc prefix and id prefix
	dre_store             *st;
	int                    cf; // the owner's column family for jobs
	const char            *dir; // where uploads are kept (created)
	const dre_ijob_entity *entities; // terminated by { NULL }
	void                  *svc_arg; // passed to apply
	dre_outbox            *ob; // IMPORT_JOB_FINISHED goes through it
	int64_t                max_upload; // bytes; 0 = no limit
	int64_t                min_free; // bytes of disk kept free
	bool callback_insecure; // http and private addresses allowed
	// The key sealing callback secrets at rest (dre/seal.h).
	unsigned char seal_key[DRE_SEAL_KEY_LEN];
	int64_t       callback_attempts; // 0: 10
	int64_t       callback_backoff_ms; // the first retry's wait; 0: 1000
} dre_ijob_cfg;

// The settings every owner offers (config rows: DRE_IJOB_CFG_ROWS).
typedef struct {
	int64_t max_upload;
	int64_t min_free;
	bool    callback_insecure;
	char   *key_file;
	int64_t callback_attempts;
	int64_t callback_backoff_ms;
} dre_ijob_opts;

// DRE_IJOB_CFG_ROWS(type, member) are the config rows of the settings
// above, for an owner's config table (member: its dre_ijob_opts).
#define DRE_IJOB_CFG_ROWS(type, m)                                            \
	{ "imports.max_upload", DRE_CFG_INT, offsetof(type, m.max_upload),    \
		"0",                                                          \
		"largest import upload accepted, bytes (0: no limit but the " \
		"disk)",                                                      \
		DRE_CFG_NONNEGATIVE },                                        \
	    { "imports.min_free_bytes", DRE_CFG_INT,                          \
		    offsetof(type, m.min_free), "104857600",                  \
		    "an import upload fails rather than leave less free "     \
		    "disk "                                                   \
		    "space than this",                                        \
		    DRE_CFG_NONNEGATIVE },                                    \
	    { "imports.callback_insecure", DRE_CFG_BOOL,                      \
		    offsetof(type, m.callback_insecure), "false",             \
		    "allow http and private addresses as import job "         \
		    "callbackUrl (tests, closed networks)" },                 \
	    { "imports.key_file", DRE_CFG_STR, offsetof(type, m.key_file),    \
		    "",                                                       \
		    "the 32-byte key sealing import job callback secrets at " \
		    "rest (AES-256-GCM), created on first start; empty: "     \
		    "<data_dir>/<service>-imports.key, outside the store" },  \
	    { "imports.callback_attempts", DRE_CFG_INT,                       \
		    offsetof(type, m.callback_attempts), "10",                \
		    "attempts to deliver an import job's finish callback "    \
		    "(kept across restarts) before it is given up",           \
		    DRE_CFG_POSITIVE },                                       \
	{                                                                     \
		"imports.callback_backoff_ms", DRE_CFG_INT,                   \
		    offsetof(type, m.callback_backoff_ms), "1000",            \
		    "wait before the first retry of a failed import job "     \
		    "callback; doubled at each retry, at most 15 minutes",    \
		    DRE_CFG_POSITIVE                                          \
	}

// dre_ijob_start is dre_ijob_open for a service: uploads in
// <data_dir>/<svc>-imports, the settings o, errors logged.
dre_err dre_ijob_start(dre_ijob_reg **rp, const dre_common_cfg *common,
    const char *svc, dre_store *st, int cf, const dre_ijob_entity *entities,
    void *svc_arg, dre_outbox *ob, const dre_ijob_opts *o);

// dre_ijob_open starts the owner's job machinery: unfinished jobs found in
// the store are queued again (resumed at their cursor) and the worker
// thread starts. dre_ijob_close stops the worker at a row boundary.
dre_err dre_ijob_open(dre_ijob_reg **rp, const dre_ijob_cfg *cfg);
void    dre_ijob_close(dre_ijob_reg *r);

// dre_ijob_enlist is called by an owner's write path with the batch that
// holds a row's effect, before writing it: when the calling thread is
// applying an import row, the job's cursor is added to b and true is
// returned (the caller may write b without sync; the job syncs when it
// finishes). False otherwise (an ordinary write).
bool dre_ijob_enlist(dre_batch *b);

// What dre_ijob_submit creates.
typedef struct {
	const char   *tenant;
	const char   *principal;
	const char   *entity;
	dre_ijob_fmt  format;
	dre_ijob_mode mode;
	const char   *name; // may be NULL; see dre_ijob_name_ok
	const char   *source; // "api", "pos" (items kept), "s4", ...
	const char   *callback_url; // may be NULL
	const char   *callback_secret;
} dre_ijob_spec;

// A job's name is at most DRE_IJOB_NAME_MAX characters of UTF-8;
// dre_ijob_name_ok tells whether name (NULL: none) is one. A longer name
// given to dre_ijob_submit is cut before a character.
#define DRE_IJOB_NAME_MAX 255
bool dre_ijob_name_ok(const char *name);

// dre_ijob_submit creates a job with data[0..len) as its whole file and
// queues it; id receives its id (DRE_IJOB_ID_MAX). DRE_EINVAL: unknown
// entity; DRE_ETOOBIG: past imports.max_upload or the disk's free space.
#define DRE_IJOB_ID_MAX 80
dre_err dre_ijob_submit(dre_ijob_reg *r, const dre_ijob_spec *spec,
    const void *data, size_t len, char *id);

// dre_ijob_routes are the rpc routes above, for an owner's route table:
// each takes the dre_ijob_reg as its svc argument through
// dre_ijob_dispatch, so an owner adds them as
//   { "<svc>.ImportJobs.create", h_ijob }, ... with
//   static void h_ijob(void *s, const dre_rpc_call *c, dre_rpc_reply *r)
//   { dre_ijob_dispatch(((my_svc *) s)->jobs, c, r); }
// dre_ijob_dispatch serves any of the methods (by the name's suffix).
void dre_ijob_dispatch(
    dre_ijob_reg *r, const dre_rpc_call *call, dre_rpc_reply *rep);

// dre_ijob_fields are the members of a job document (the gateway merges
// every owner's ImportJobs.list with them).
extern const dre_odata_fields dre_ijob_fields;
// ... of an ImportJobError and an ArticleImportJobItem.
extern const dre_odata_fields dre_ijob_error_fields;
extern const dre_odata_fields dre_ijob_item_fields;

// dre_ijob_job_json appends job id's document as GET answers it to out;
// DRE_ENOTFOUND when the tenant has no such job.
dre_err dre_ijob_job_json(
    dre_ijob_reg *r, const char *tenant, const char *id, dre_buf *out);

#endif
