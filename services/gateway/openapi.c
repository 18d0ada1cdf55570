// openapi.c -- GET /openapi.json: the OpenAPI document (proto/openapi.yaml,
// converted to JSON at build time), served to anyone: no authentication.
#include <stddef.h>

#include "gw.h"

// proto/openapi_embed.py writes both into the build tree.
extern const char   dre_openapi_json[];
extern const size_t dre_openapi_json_len;

void
gw_openapi(gw_job *j)
{
	gw_job_respond(
	    j, 200, dre_openapi_json, dre_openapi_json_len, GW_JSON_CT);
}
