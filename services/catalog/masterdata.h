// catalog/masterdata.h -- S/4HANA DRFOUT messages (issue 17.3): a
// ProductMerchandiseViewReplicationBulkRequest as JSON or in a SOAP
// envelope, read into products and converted into article rows. XML goes
// through libxml2, hardened: no DTD at all (a DOCTYPE is refused before its
// declarations are read), no entity expansion, no network, bounded size
// and depth. Pure (no store).
#ifndef CAT_MASTERDATA_H
#define CAT_MASTERDATA_H

#include <stddef.h>
#include <stdint.h>

#include "dre/arena.h"
#include "dre/buf.h"
#include "dre/err.h"
#include "dre/json.h"

#define MD_ROOT   "ProductMerchandiseViewReplicationBulkRequest"
#define MD_ID_MAX 100 // characters of MessageHeader/ID

// One ProductMerchandiseView/Product. Strings are in the parse's arena;
// NULL when the message does not carry the element.
typedef struct {
	const char *number; // ProductID -> articleNumber
	const char *name; // Description/Description (EN first) -> name
	const char *ean; // GlobalTradeItemNumber -> ean
	const char *group; // MerchandiseCategoryID -> articleGroupId
	const char *manufacturer; // ManufacturerName -> manufacturer
	const char *manufacturer_id; // ManufacturerID -> manufacturerId
} md_product;

typedef struct {
	const char *id; // MessageHeader/ID: the idempotency key
	const char *sender; // MessageHeader/SenderBusinessSystemID or NULL
	const char *created; // MessageHeader/CreationDateTime or NULL
	md_product *products;
	size_t      n;
	int         soap; // 0: JSON, 11: SOAP 1.1, 12: SOAP 1.2
} md_message;

typedef struct {
	size_t max_bytes; // of an XML message
	int    max_depth; // element nesting of an XML message
} md_limits;

// Why a message was refused: the HTTP status (400, 413), the error code,
// the target (may be "") and a message for the client.
typedef struct {
	int         status;
	const char *code;
	char        target[64];
	char        message[256];
} md_error;

// md_parse_json reads the JSON form (the same element names: {MessageHeader:
// {ID, ...}, ProductMerchandiseView: [{Product: {...}}]}) into *m.
// DRE_EINVAL with *e filled when it is not one.
dre_err md_parse_json(
    md_message *m, dre_arena *a, const dre_json *root, md_error *e);

// md_parse_soap reads a SOAP 1.1 or 1.2 envelope whose Body holds the
// request into *m. DRE_EINVAL with *e filled (400: not well-formed, with
// line and column; a DOCTYPE; not the expected envelope; 413: larger than
// the limit; too deep). Thread-safe.
dre_err md_parse_soap(md_message *m, dre_arena *a, const char *xml, size_t len,
    const md_limits *lim, md_error *e);

// md_articles is THE conversion of a message into article rows: a JSON
// array of Article documents, one per product and line, in order
// (articleNumber, name, ean, articleGroupId, manufacturer, manufacturerId;
// an element the product lacks is left out) -- the file of the message's
// Articles import job.
void md_articles(dre_buf *out, const md_message *m);

// md_soap_ack writes the SOAP acknowledgement (the version of m->soap) of
// message m, received at received_ms: its ID, the import job's id (NULL:
// none), the status and the number of products. Well-formed by
// construction (libxml2's writer); the same arguments, the same bytes.
dre_err md_soap_ack(dre_buf *out, const md_message *m, const char *job_id,
    const char *status, int64_t received_ms);

// md_soap_content_type is the media type of a SOAP answer of version soap.
const char *md_soap_content_type(int soap);

#endif
