// coupon/keys.h -- key layout helpers and the sweeper's single-item
// transitions, shared by codes.c, jobs.c and links.c (not an API).
#ifndef CP_KEYS_H
#define CP_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "coupon.h"

// cp_key_when writes tag, when (8 bytes big endian), tenant \0 id.
size_t cp_key_when(char *out, size_t cap, char tag, int64_t when,
    const char *tenant, const char *id);

// cp_expire_code expires a code whose validTo (index time when) passed.
void cp_expire_code(cp *s, dre_arena *a, const char *tenant, const char *code,
    int64_t when, int64_t now);
// cp_expire_hold ends a reservation whose TTL passed.
void cp_expire_hold(
    cp *s, dre_arena *a, const char *tenant, const char *res_id, int64_t now);

// cp_stripe is the lock of every transition of (tenant, code).
pthread_mutex_t *cp_stripe(cp *s, const char *tenant, const char *code);
// cp_stage_code puts code document c (updated_at = now) into b.
dre_err cp_stage_code(
    cp *s, dre_batch *b, const char *tenant, cp_code *c, int64_t now);
// cp_stage_new_code puts a new code c and its indexes (type, customer,
// validTo) into b; the caller holds the creation lock and has checked that
// the code does not exist.
dre_err cp_stage_new_code(cp *s, dre_batch *b, const char *tenant, cp_code *c);
// cp_hold_end stages the end of held reservation r of code c (state end at
// now), its indexes and the code's hold count; event (may be NULL) is
// queued. The caller stages c.
dre_err cp_hold_end(cp *s, dre_batch *b, const char *tenant, cp_code *c,
    cp_resv *r, cp_hold_state end, int64_t now, const char *event);

#endif
