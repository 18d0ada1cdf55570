// fuzz_rpc.c -- libFuzzer target for dre_rpc_batch_split, which finds the
// answers of a coalesced call's reply (RpcReply.batch) in place, without
// protobuf-c.
//
// Oracle: it never reads outside the input, and whenever protobuf-c
// decodes the input as an RpcReply the split agrees with it: the same
// status, the same number of answers, the same bytes in each.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dre/rpc.h"

#include "fuzz.h"

#define MAXITEMS 16

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ProtobufCBinaryData items[MAXITEMS];
	int32_t             status = 0;
	long n = dre_rpc_batch_split(data, size, &status, items, MAXITEMS);

	CHECK(n >= -1);
	for (long i = 0; i < n && i < MAXITEMS; i++)
		CHECK(items[i].data >= data
		    && items[i].len <= size - (size_t) (items[i].data - data));
	Dre__RpcReply *r = dre__rpc_reply__unpack(NULL, size, data);
	if (r != NULL) {
		CHECK(n == (long) r->n_batch);
		CHECK(status == r->status);
		for (size_t i = 0; i < r->n_batch && i < MAXITEMS; i++) {
			CHECK(items[i].len == r->batch[i].len);
			CHECK(items[i].len == 0
			    || memcmp(items[i].data, r->batch[i].data,
			           items[i].len)
			        == 0);
		}
		dre__rpc_reply__free_unpacked(r, NULL);
	}
	return 0;
}
