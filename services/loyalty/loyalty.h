// loyalty/loyalty.h -- the loyalty service's state: contacts with their
// points and level, their lookup keys and the program, in RocksDB; the
// outbox of its events (PRODUCT-DECISIONS §8).
#ifndef LOY_LOYALTY_H
#define LOY_LOYALTY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "dre/arena.h"
#include "dre/buf.h"
#include "dre/consumer.h"
#include "dre/json.h"
#include "dre/outbox.h"
#include "dre/rpc.h"
#include "dre/store.h"

// Column families (0 is RocksDB's "default", unused).
enum {
	LOY_CF_CONTACTS = 1, // tenant \0 id -> contact (JSON, loy_contact)
	LOY_CF_INDEX, // tenant \0 kind \0 value -> id (kind e|m|n)
	LOY_CF_PROGRAM, // tenant -> program (JSON as answered)
	LOY_CF_LEDGER, // tenant \0 r \0 receipt | tenant \0 t \0 contact \0
	               // txid
	LOY_CF_OUTBOX, // events waiting for Kafka
	LOY_CF_APPLIER, // the dre.transactions.confirmed applier's keys
	LOY_CF_REWARDS, // reward vouchers, promotion assignments (rewards.c)
	LOY_CF_JOBS, // import jobs (dre/importjob.h)
	LOY_NCFS = LOY_CF_JOBS,
};

// The flat attributes of a contact, in the order they are answered.
#define LOY_ATTR_MAP(XX)                                                      \
	XX(EMAIL, "email")                                                    \
	XX(MOBILE, "mobilePhone")                                             \
	XX(MEMBER, "memberNumber")                                            \
	XX(FIRST, "firstName")                                                \
	XX(LAST, "lastName")                                                  \
	XX(COUNTRY, "countryCode")                                            \
	XX(LANGUAGE, "language")                                              \
	XX(BIRTHDAY, "birthDay")                                              \
	XX(GENDER, "gender")                                                  \
	XX(STREET, "street")                                                  \
	XX(ZIP, "zipCode")                                                    \
	XX(CITY, "city")

typedef enum {
#define LOY_ATTR_ID(id, name) LOY_A_##id,
	LOY_ATTR_MAP(LOY_ATTR_ID)
#undef LOY_ATTR_ID
	    LOY_NATTRS,
} loy_attr;

extern const char *const loy_attr_names[LOY_NATTRS];

#define LOY_MAX_DAYS   400 // earning days kept (the last 365 count)
#define LOY_MAX_LEVELS 16

// Points earned on one day (days since the epoch, UTC).
typedef struct {
	int32_t day;
	int64_t points;
} loy_earn;

// A contact as stored. Strings and nodes live in an arena.
typedef struct {
	const char     *id;
	const char     *attr[LOY_NATTRS]; // NULL = null
	const dre_json *preferences; // NULL = {}
	const dre_json *consents; // NULL = []
	const char     *source, *store; // meta; NULL = null
	int64_t         created, modified;
	int64_t         balance; // points balance (may be negative)
	const char     *level;
	loy_earn       *earn; // oldest first
	size_t          nearn;
	int64_t         vouchers; // reward vouchers made so far
} loy_contact;

// The program of a tenant (GET/PUT /api/v1/LoyaltyProgram).
typedef struct {
	int64_t ppcu; // pointsPerCurrencyUnit, hundredths
	size_t  nlevels;
	struct {
		const char *name;
		int64_t     min;
	} levels[LOY_MAX_LEVELS]; // ascending minPoints
	int64_t     per_voucher;
	int64_t     voucher_value; // minor units
	const char *voucher_currency;
	int64_t     validity_days;
	bool        automatic;
	const char *voucher_type; // voucherRule.couponTypeId; NULL = none
} loy_program;

typedef struct {
	dre_store   *st;
	dre_outbox  *ob;
	dre_applier *ap;
	// mu serialises every read-modify-write of a contact and its keys:
	// API calls take it per call, the applier for a whole batch.
	pthread_mutex_t mu;
	// Reward vouchers are coupon codes (coupon.IssueVoucher); an
	// assignment names a promotion of the catalog. Both calls wait at
	// most call_ms.
	dre_rpc_client *coupon, *catalog;
	int64_t         call_ms;
	// The automatic conversion of points into vouchers (rewards.c).
	pthread_t            converter;
	bool                 converter_on;
	atomic_bool          stop;
	pthread_mutex_t      cmu;
	pthread_cond_t       ccv;
	bool                 kicked; // under cmu
	struct dre_ijob_reg *jobs; // import jobs of Contacts (handlers.c)
} loy;

// loy_contact_get reads contact id of tenant as b will leave it (b may be
// NULL) into c (strings in a). DRE_ENOTFOUND, DRE_ECODEC.
dre_err loy_contact_get(loy *s, dre_batch *b, dre_arena *a, const char *tenant,
    const char *id, loy_contact *c);
// loy_contact_put stores c and its lookup keys into b; old (NULL for a new
// contact) is what c was, whose keys that changed are deleted.
dre_err loy_contact_put(loy *s, dre_batch *b, const char *tenant,
    const loy_contact *c, const loy_contact *old);
// loy_lookup finds the contact id by kind ('e' email, 'm' mobilePhone, 'n'
// memberNumber); id is copied into a. DRE_ENOTFOUND.
dre_err loy_lookup(loy *s, dre_batch *b, dre_arena *a, const char *tenant,
    char kind, const char *value, const char **id);
// loy_resolve finds the contact a basket or receipt names: a contact id,
// else a memberNumber.
dre_err loy_resolve(loy *s, dre_batch *b, dre_arena *a, const char *tenant,
    const char *who, loy_contact *c);
// loy_norm_email lowercases an email into a (the key it is found by).
const char *loy_norm_email(dre_arena *a, const char *email);

// loy_program_get reads the tenant's program (the defaults when none).
dre_err loy_program_get(
    loy *s, dre_arena *a, const char *tenant, loy_program *p);
// loy_program_parse reads a program document; false with msg/target set.
bool loy_program_parse(loy_program *p, dre_arena *a, const dre_json *doc,
    const char **target, char *msg, size_t mcap);
// loy_program_render writes p as its JSON document.
void loy_program_render(dre_buf *out, const loy_program *p);
// loy_program_default fills the defaults of PRODUCT-DECISIONS §8.
void loy_program_default(loy_program *p);

// loy_earned365 is the sum of points earned on days after today-365.
int64_t loy_earned365(const loy_contact *c, int32_t today);
// loy_level is the name of the highest level whose minPoints <= earned.
const char *loy_level(const loy_program *p, int64_t earned);
// loy_credit adds points (negative deducts) on day to c (earn in a), and
// recomputes its level; *prev is the level before.
void loy_credit(loy_contact *c, dre_arena *a, const loy_program *p,
    int64_t points, int32_t day, const char **prev);

// loy_event queues one LoyaltyEvent for c into b; seed makes its id.
dre_err loy_event(loy *s, dre_batch *b, const char *tenant,
    const loy_contact *c, const char *type, int64_t points,
    const char *prev_level, const char *txid, const char *receipt,
    const char *reference, const char *seed, int64_t now);

// loy_render writes c as answered by /api/v3/contacts.
void loy_render(dre_buf *out, const loy_contact *c);
// loy_serialize writes c as stored.
void loy_serialize(dre_buf *out, const loy_contact *c);

// loy_open / loy_close: store and outbox (service main and tests).
dre_err loy_open(loy *s, const char *path, const dre_kvlist *kafka);
void    loy_close(loy *s);

#endif
