// registry.h -- Confluent schema registry: registering DRE's event schemas
// (events.format=confluent).
#ifndef DRE_REGISTRY_H
#define DRE_REGISTRY_H

#include "dre/err.h"

// dre_registry_register_all registers the value schema of every topic of
// dre_topics[] that has one, as subject "<topic>-value", with the registry
// at url (POST <url>/subjects/<subject>/versions, the registry's REST
// protocol; registering a schema the subject has is idempotent and answers
// its id), tells the codecs each id (dre_avro_set_registry_id) and makes
// them write the Confluent wire format. Logs and returns DRE_EUNAVAIL
// (or DRE_ECONFIG for an unusable URL) when a schema could not be
// registered; then nothing is switched.
dre_err dre_registry_register_all(const char *url, int timeout_ms);

#endif
