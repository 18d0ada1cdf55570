// fuzz_avro.c -- libFuzzer target for the Avro event decoders (avro.c):
// every event schema decodes arbitrary bytes.
//
// An input starting with the single-object magic C3 01 is decoded as it
// is; any other input is framed first: its first byte picks one of the
// embedded writer schemas (older versions included) and the rest becomes
// the body behind that schema's header, so the fuzzer spends its time in
// the bodies rather than guessing 64-bit fingerprints.
//
// Oracle: every decoder refuses (DRE_ECODEC) or decodes; what decodes
// encodes, and that encoding decodes and encodes to the same bytes.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dre/arena.h"
#include "dre/avro.h"
#include "dre/buf.h"
#include "dre/log.h"

#include "fuzz.h"

static const char *const writers[]
    = { "MasterDataChanged", "MasterDataChanged_v1", "TransactionConfirmed",
	      "SideEffectResult", "BudgetStatus", "BudgetEvent", "CouponEvent",
	      "TransactionReturned", "ImportJobFinished" };
#define NWRITERS (sizeof(writers) / sizeof(writers[0]))

// Every event codec of avro.h: struct type and name suffix.
#define CODECS(XX)                                                            \
	XX(dre_master_event, master)                                          \
	XX(dre_tx_confirmed, tx_confirmed)                                    \
	XX(dre_sfx_result, sfx_result)                                        \
	XX(dre_budget_status_event, budget_status)                            \
	XX(dre_budget_event, budget_event)                                    \
	XX(dre_coupon_event, coupon)                                          \
	XX(dre_return_event, return_event)                                    \
	XX(dre_import_finished_event, import_finished)

// One codec, type-erased: decode into ev, encode ev.
typedef struct {
	const char *name;
	dre_err (*decode)(void *ev, dre_arena *a, const void *d, size_t n);
	dre_err (*encode)(dre_buf *out, const void *ev);
} codec;

#define WRAP(T, n)                                                            \
	static dre_err n##_decode(                                            \
	    void *ev, dre_arena *a, const void *d, size_t len)                \
	{                                                                     \
		return dre_avro_decode_##n((T *) ev, a, d, len);              \
	}                                                                     \
	static dre_err n##_encode(dre_buf *out, const void *ev)               \
	{                                                                     \
		return dre_avro_encode_##n(out, (const T *) ev);              \
	}
CODECS(WRAP)
#define ENTRY(T, n) { #n, n##_decode, n##_encode },
static const codec codecs[] = { CODECS(ENTRY) };

// Large enough for any of the event structs.
typedef union {
	dre_master_event          m;
	dre_tx_confirmed          t;
	dre_sfx_result            s;
	dre_budget_status_event   b;
	dre_budget_event          e;
	dre_coupon_event          c;
	dre_return_event          r;
	dre_import_finished_event i;
} any_event;

static void
decode_all(dre_arena *a, const uint8_t *d, size_t n)
{
	char id[37];

	if (dre_avro_event_id(id, d, n) == DRE_OK)
		CHECK(strlen(id) > 0 && strlen(id) <= 36);
	for (size_t i = 0; i < sizeof(codecs) / sizeof(codecs[0]); i++) {
		const codec *c = &codecs[i];
		any_event    ev, ev2;
		dre_buf      b1 = { 0 }, b2 = { 0 };

		memset(&ev, 0, sizeof(ev));
		dre_err err = c->decode(&ev, a, d, n);
		if (err != DRE_OK) {
			CHECK(err == DRE_ECODEC);
			continue;
		}
		CHECK(strlen((const char *) &ev) <= 36); // event_id first
		err = c->encode(&b1, &ev);
		if (err != DRE_OK) {
			fprintf(stderr, "%s: decoded but not encodable: %s\n",
			    c->name, dre_strerror(err));
			abort();
		}
		memset(&ev2, 0, sizeof(ev2));
		CHECK(c->decode(&ev2, a, b1.data, b1.len) == DRE_OK);
		CHECK(c->encode(&b2, &ev2) == DRE_OK);
		CHECK(
		    b1.len == b2.len && memcmp(b1.data, b2.data, b1.len) == 0);
		dre_buf_free(&b1);
		dre_buf_free(&b2);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int once;
	dre_arena *a;

	if (!once) {
		dre_log_init("fuzz_avro", DRE_LOG_ERROR + 1);
		once = 1;
	}
	if ((a = dre_arena_alloc(0)) == NULL)
		abort();
	if (size >= 2 && data[0] == 0xC3 && data[1] == 0x01) {
		decode_all(a, data, size);
	} else if (size >= 1) {
		uint64_t fp = 0;
		CHECK(dre_avro_fingerprint(writers[data[0] % NWRITERS], &fp)
		    == DRE_OK);
		uint8_t *framed = malloc(size + 9);
		CHECK(framed != NULL);
		framed[0] = 0xC3;
		framed[1] = 0x01;
		for (int i = 0; i < 8; i++)
			framed[2 + i] = (uint8_t) (fp >> (8 * i));
		memcpy(framed + 10, data + 1, size - 1);
		decode_all(a, framed, size + 9);
		free(framed);
	}
	dre_arena_free(a);
	return 0;
}
