// feed.h -- master data: catalog snapshot, the dre.master.* change feed and
// the local copy in RocksDB.
#ifndef DRE_EVALUATOR_FEED_H
#define DRE_EVALUATOR_FEED_H

#include "dre/err.h"
#include "evaluator.h"

// ev_feed_start loads the local copy (if any) into the engine, then starts
// the follower (an applier) that takes a snapshot from the catalog and
// follows the feed.
dre_err ev_feed_start(ev_svc *s);
// ev_feed_stop stops the follower. Without a feed it does nothing.
void ev_feed_stop(ev_svc *s);

#endif
