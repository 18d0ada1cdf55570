// changes.h -- the list of master-data changes a write made, as the catalog
// reports it to the gateway (reply header dre-changes) and the gateway asks
// the evaluators and the coupon service to wait for (read-your-writes,
// PRODUCT-DECISIONS §4b): one line per change, KIND \t key \t version.
#ifndef DRE_CHANGES_H
#define DRE_CHANGES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dre/buf.h"

// dre_changes_add appends one change to the list b.
void dre_changes_add(
    dre_buf *b, const char *kind, const char *key, int64_t version);

// dre_changes_next reads the change at *pos of list[0..len) and moves *pos
// past it: *kind and *key point into line (cap bytes, overwritten), and
// *version. Lines that are too long or malformed are skipped. False at the
// end of the list.
bool dre_changes_next(const uint8_t *list, size_t len, size_t *pos, char *line,
    size_t cap, const char **kind, const char **key, int64_t *version);

#endif
