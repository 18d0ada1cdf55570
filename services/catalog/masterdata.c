// catalog/masterdata.c -- S/4HANA DRFOUT messages read from JSON or SOAP
// (libxml2, hardened) and converted into article rows.
#include "masterdata.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/SAX2.h>
#include <libxml/tree.h>
#include <libxml/xmlwriter.h>

#include "dre/clock.h"
#include "dre/jsonw.h"

#define SOAP11_NS "http://schemas.xmlsoap.org/soap/envelope/"
#define SOAP12_NS "http://www.w3.org/2003/05/soap-envelope"
#define ACK_NS    "urn:dre:master-data:drfout"

static pthread_once_t once = PTHREAD_ONCE_INIT;

static void
init(void)
{
	xmlInitParser(); // before threads share the library
}

// quiet drops what libxml2 reports outside a parser context (encoding and
// I/O errors: XML_PARSE_NOERROR does not reach them). Its default writes a
// line to stderr for each, so a client's bytes would write lines into the
// service's log; the parse's own error is read from its context.
static void quiet(void *ctx, const char *msg, ...)
    __attribute__((format(printf, 2, 3)));

static void
quiet(void *ctx, const char *msg, ...)
{
	(void) ctx;
	(void) msg;
}

static void fail(md_error *e, int status, const char *code, const char *target,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void
fail(md_error *e, int status, const char *code, const char *target,
    const char *fmt, ...)
{
	va_list ap;
	e->status = status;
	e->code = code;
	snprintf(e->target, sizeof e->target, "%s", target ? target : "");
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof e->message, fmt, ap);
	va_end(ap);
}

// id_ok: the message ID becomes a store key and is echoed in answers.
static bool
id_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0, chars = 0;
	// The limit is in characters, as documented (an id in a non-Latin
	// script has 2 to 4 bytes per character).
	if (n == 0 || !dre_utf8_valid(s, n, &chars) || chars > MD_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char) s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

static dre_err
check_message(md_message *m, md_error *e, const char *header_target,
    const char *views_target)
{
	if (!id_ok(m->id)) {
		fail(e, 400, "VALIDATION_FAILED", header_target,
		    "%s must be a message id of 1 to %d characters (the "
		    "replication is idempotent by it)",
		    header_target, MD_ID_MAX);
		return DRE_EINVAL;
	}
	if (m->n == 0) {
		fail(e, 400, "VALIDATION_FAILED", views_target,
		    "the message holds no %s with a Product", views_target);
		return DRE_EINVAL;
	}
	return DRE_OK;
}

// ---- JSON -------------------------------------------------------------

// jstr reads member k of obj: a string, or a number's text; NULL else.
static const char *
jstr(const dre_json *obj, const char *k)
{
	const dre_json *v = dre_json_get(obj, k);
	if (dre_json_is(v, DRE_JSON_STRING) && v->len > 0)
		return v->str;
	if (dre_json_is(v, DRE_JSON_NUMBER))
		return v->str;
	return NULL;
}

// jdescription picks the English description, else the first: a string,
// or [{languageCode, Description}] as the XML's Description/Description.
static const char *
jdescription(const dre_json *product)
{
	const dre_json *d = dre_json_get(product, "Description");
	const char     *first = NULL;
	if (dre_json_is(d, DRE_JSON_STRING))
		return d->len ? d->str : NULL;
	if (dre_json_is(d, DRE_JSON_OBJECT))
		return jstr(d, "Description");
	for (const dre_json *x
	     = dre_json_is(d, DRE_JSON_ARRAY) ? d->child : NULL;
	     x != NULL; x = x->next) {
		const char *t = jstr(x, "Description");
		const char *lang = jstr(x, "languageCode");
		if (t == NULL)
			continue;
		if (lang != NULL && strcasecmp(lang, "EN") == 0)
			return t;
		if (first == NULL)
			first = t;
	}
	return first;
}

dre_err
md_parse_json(md_message *m, dre_arena *a, const dre_json *root, md_error *e)
{
	memset(m, 0, sizeof *m);
	if (!dre_json_is(root, DRE_JSON_OBJECT)) {
		fail(e, 400, "VALIDATION_FAILED", "",
		    "the body must be a JSON object {MessageHeader, "
		    "ProductMerchandiseView[]}");
		return DRE_EINVAL;
	}
	const dre_json *h = dre_json_get(root, "MessageHeader");
	m->id = jstr(h, "ID");
	m->sender = jstr(h, "SenderBusinessSystemID");
	m->created = jstr(h, "CreationDateTime");
	const dre_json *views = dre_json_get(root, "ProductMerchandiseView");
	size_t          cap = dre_json_is(views, DRE_JSON_ARRAY) ? views->len
	             : dre_json_is(views, DRE_JSON_OBJECT)       ? 1
	                                                         : 0;
	if (cap > 0
	    && (m->products = dre_arena_get(a, cap * sizeof *m->products))
	        == NULL)
		return DRE_ENOMEM;
	const dre_json *x
	    = dre_json_is(views, DRE_JSON_ARRAY) ? views->child : views;
	for (size_t i = 0; cap > 0 && x != NULL; x = x->next, i++) {
		const dre_json *p = dre_json_is(x, DRE_JSON_OBJECT)
		    ? dre_json_get(x, "Product")
		    : NULL;
		if (!dre_json_is(p, DRE_JSON_OBJECT)) {
			char t[64];
			snprintf(t, sizeof t,
			    "ProductMerchandiseView[%zu].Product", i);
			fail(e, 400, "VALIDATION_FAILED", t,
			    "%s must be an object", t);
			return DRE_EINVAL;
		}
		m->products[m->n++] = (md_product) {
			.number = jstr(p, "ProductID"),
			.name = jdescription(p),
			.ean = jstr(p, "GlobalTradeItemNumber"),
			.group = jstr(p, "MerchandiseCategoryID"),
			.manufacturer = jstr(p, "ManufacturerName"),
			.manufacturer_id = jstr(p, "ManufacturerID"),
		};
		if (views->type == DRE_JSON_OBJECT)
			break;
	}
	return check_message(
	    m, e, "MessageHeader.ID", "ProductMerchandiseView");
}

// ---- XML --------------------------------------------------------------

typedef struct {
	int  max_depth;
	bool doctype;
	bool too_deep;
} guard;

// A DOCTYPE stops the parser where it starts: no declaration of it (no
// entity, internal or external) is ever read.
static void
on_doctype(
    void *ctx, const xmlChar *name, const xmlChar *ext, const xmlChar *sys)
{
	xmlParserCtxtPtr ctxt = ctx;
	guard           *g = ctxt->_private;
	(void) name;
	(void) ext;
	(void) sys;
	g->doctype = true;
	xmlStopParser(ctxt);
}

static void
on_element(void *ctx, const xmlChar *local, const xmlChar *prefix,
    const xmlChar *uri, int nns, const xmlChar **ns, int nattrs,
    int ndefaulted, const xmlChar **attrs)
{
	xmlParserCtxtPtr ctxt = ctx;
	guard           *g = ctxt->_private;
	if (ctxt->nameNr + 1 > g->max_depth) {
		g->too_deep = true;
		xmlStopParser(ctxt);
		return;
	}
	xmlSAX2StartElementNs(
	    ctx, local, prefix, uri, nns, ns, nattrs, ndefaulted, attrs);
}

static bool
named(const xmlNode *n, const char *local)
{
	return n != NULL && n->type == XML_ELEMENT_NODE
	    && strcmp((const char *) n->name, local) == 0;
}

static const xmlNode *
child(const xmlNode *n, const char *local)
{
	for (const xmlNode *c = n ? n->children : NULL; c; c = c->next)
		if (named(c, local))
			return c;
	return NULL;
}

static const xmlNode *
first_element(const xmlNode *n)
{
	for (const xmlNode *c = n ? n->children : NULL; c; c = c->next)
		if (c->type == XML_ELEMENT_NODE)
			return c;
	return NULL;
}

// text copies the trimmed text of element n into the arena; NULL when
// absent or empty.
static const char *
text(dre_arena *a, const xmlNode *n)
{
	if (n == NULL)
		return NULL;
	xmlChar    *t = xmlNodeGetContent(n);
	const char *s = (const char *) t, *out = NULL;
	if (s != NULL) {
		size_t len = strlen(s);
		while (len > 0 && strchr(" \t\r\n", s[len - 1]))
			len--;
		while (len > 0 && strchr(" \t\r\n", *s))
			s++, len--;
		if (len > 0)
			out = dre_arena_strndup(a, s, len);
	}
	xmlFree(t);
	return out;
}

static const char *
xdescription(dre_arena *a, const xmlNode *product)
{
	const char *first = NULL;
	for (const xmlNode *d = product->children; d; d = d->next) {
		if (!named(d, "Description"))
			continue;
		const xmlNode *inner = child(d, "Description");
		if (inner == NULL) // a plain <Description>text</Description>
			return text(a, d);
		for (; inner != NULL; inner = inner->next) {
			if (!named(inner, "Description"))
				continue;
			xmlChar *lang
			    = xmlGetProp(inner, BAD_CAST "languageCode");
			bool en = lang != NULL
			    && strcasecmp((const char *) lang, "EN") == 0;
			xmlFree(lang);
			const char *t = text(a, inner);
			if (t != NULL && en)
				return t;
			if (first == NULL)
				first = t;
		}
	}
	return first;
}

static dre_err
read_request(md_message *m, dre_arena *a, const xmlNode *req)
{
	const xmlNode *h = child(req, "MessageHeader");
	size_t         cap = 0;
	m->id = text(a, child(h, "ID"));
	m->sender = text(a, child(h, "SenderBusinessSystemID"));
	m->created = text(a, child(h, "CreationDateTime"));
	for (const xmlNode *v = req->children; v; v = v->next)
		cap += named(v, "ProductMerchandiseView") ? 1 : 0;
	if (cap > 0
	    && (m->products = dre_arena_get(a, cap * sizeof *m->products))
	        == NULL)
		return DRE_ENOMEM;
	for (const xmlNode *v = req->children; v; v = v->next) {
		const xmlNode *p = named(v, "ProductMerchandiseView")
		    ? child(v, "Product")
		    : NULL;
		if (p == NULL)
			continue;
		m->products[m->n++] = (md_product) {
			.number = text(a, child(p, "ProductID")),
			.name = xdescription(a, p),
			.ean = text(a, child(p, "GlobalTradeItemNumber")),
			.group = text(a, child(p, "MerchandiseCategoryID")),
			.manufacturer = text(a, child(p, "ManufacturerName")),
			.manufacturer_id = text(a, child(p, "ManufacturerID")),
		};
	}
	return DRE_OK;
}

// envelope checks the SOAP frame and finds the request in its Body.
static const xmlNode *
envelope(xmlDocPtr doc, int *soap, md_error *e)
{
	const xmlNode *env = xmlDocGetRootElement(doc);
	const char    *ns = env && env->ns ? (const char *) env->ns->href : "";
	if (!named(env, "Envelope")
	    || (strcmp(ns, SOAP11_NS) != 0 && strcmp(ns, SOAP12_NS) != 0)) {
		fail(e, 400, "VALIDATION_FAILED", "Envelope",
		    "the body must be a SOAP 1.1 (" SOAP11_NS
		    ") or 1.2 (" SOAP12_NS ") Envelope");
		return NULL;
	}
	*soap = strcmp(ns, SOAP11_NS) == 0 ? 11 : 12;
	const xmlNode *body = child(env, "Body");
	const xmlNode *req = first_element(body);
	if (!named(req, MD_ROOT)) {
		fail(e, 400, "VALIDATION_FAILED", "Body",
		    "the SOAP Body must hold a " MD_ROOT);
		return NULL;
	}
	return req;
}

dre_err
md_parse_soap(md_message *m, dre_arena *a, const char *xml, size_t len,
    const md_limits *lim, md_error *e)
{
	memset(m, 0, sizeof *m);
	if (len > lim->max_bytes) {
		fail(e, 413, "PAYLOAD_TOO_LARGE", "",
		    "the message has %zu bytes, more than the %zu bytes a "
		    "master-data message may have",
		    len, lim->max_bytes);
		return DRE_EINVAL;
	}
	if (len == 0) {
		fail(e, 400, "MALFORMED_XML", "", "the body is empty");
		return DRE_EINVAL;
	}
	pthread_once(&once, init);
	xmlSetGenericErrorFunc(NULL, quiet); // the calling thread's handler
	xmlParserCtxtPtr ctxt = xmlCreateMemoryParserCtxt(xml, (int) len);
	if (ctxt == NULL)
		return DRE_ENOMEM;
	// No XML_PARSE_NOENT (entities stay unexpanded), no DTDLOAD/DTDATTR
	// (nothing fetched), NONET, no HUGE (libxml2's own limits stay).
	xmlCtxtUseOptions(ctxt,
	    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING
	        | XML_PARSE_NOCDATA);
	guard g = { .max_depth = lim->max_depth };
	ctxt->_private = &g;
	ctxt->sax->internalSubset = on_doctype;
	ctxt->sax->externalSubset = NULL;
	ctxt->sax->startElementNs = on_element;
	(void) xmlParseDocument(ctxt);
	xmlDocPtr doc = ctxt->myDoc;
	ctxt->myDoc = NULL;
	dre_err err = DRE_EINVAL;
	if (g.doctype) {
		fail(e, 400, "MALFORMED_XML", "",
		    "a DOCTYPE is not allowed in a master-data message (no "
		    "DTDs, no entities)");
	} else if (g.too_deep) {
		fail(e, 400, "MALFORMED_XML", "",
		    "the XML nests elements deeper than %d levels",
		    lim->max_depth);
	} else if (doc == NULL || !ctxt->wellFormed) {
		const xmlError *x = xmlCtxtGetLastError(ctxt);
		char            msg[160] = "not well-formed";
		if (x != NULL && x->message != NULL) {
			// libxml2 quotes the document's names (UTF-8): cut
			// before a character, never inside one.
			snprintf(msg, sizeof msg, "%.*s",
			    DRE_UTF8_CUT(x->message, sizeof msg - 1));
			size_t n = strlen(msg);
			while (
			    n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
				msg[--n] = '\0';
		}
		fail(e, 400, "MALFORMED_XML", "",
		    "malformed XML at line %d, column %d: %s", x ? x->line : 0,
		    x ? x->int2 : 0, msg);
	} else {
		const xmlNode *req = envelope(doc, &m->soap, e);
		if (req != NULL && (err = read_request(m, a, req)) == DRE_OK)
			err = check_message(m, e, "MessageHeader/ID",
			    "ProductMerchandiseView");
	}
	xmlFreeDoc(doc);
	xmlFreeParserCtxt(ctxt);
	return err;
}

// ---- conversion -------------------------------------------------------

void
md_articles(dre_buf *out, const md_message *m)
{
	dre_jsonw w;
	dre_buf_putc(out, '[');
	for (size_t i = 0; i < m->n; i++) {
		const md_product *p = &m->products[i];
		const struct {
			const char *k, *v;
		} f[] = { { "articleNumber", p->number }, { "name", p->name },
			{ "ean", p->ean }, { "articleGroupId", p->group },
			{ "manufacturer", p->manufacturer },
			{ "manufacturerId", p->manufacturer_id } };
		dre_buf_puts(out, i ? ",\n" : "\n"); // one document a line
		dre_jsonw_init(&w, out);
		dre_jsonw_obj_begin(&w);
		for (size_t k = 0; k < sizeof f / sizeof f[0]; k++)
			if (f[k].v != NULL)
				dre_jsonw_kstr(&w, f[k].k, f[k].v);
		dre_jsonw_obj_end(&w);
	}
	dre_buf_puts(out, "\n]\n");
}

// ---- acknowledgement --------------------------------------------------

const char *
md_soap_content_type(int soap)
{
	return soap == 12 ? "application/soap+xml; charset=utf-8"
	                  : "text/xml; charset=utf-8";
}

dre_err
md_soap_ack(dre_buf *out, const md_message *m, const char *job_id,
    const char *status, int64_t received_ms)
{
	pthread_once(&once, init);
	xmlSetGenericErrorFunc(NULL, quiet);
	xmlBufferPtr     buf = xmlBufferCreate();
	xmlTextWriterPtr w = buf ? xmlNewTextWriterMemory(buf, 0) : NULL;
	char             now[32], count[24];
	int              rc = 0;
	if (w == NULL) {
		xmlBufferFree(buf);
		return DRE_ENOMEM;
	}
	dre_time_format(now, received_ms);
	snprintf(count, sizeof count, "%zu", m->n);
#define W(call)                                                               \
	do {                                                                  \
		if (rc >= 0)                                                  \
			rc = (call);                                          \
	} while (0)
	W(xmlTextWriterStartDocument(w, NULL, "UTF-8", NULL));
	W(xmlTextWriterStartElementNS(w, BAD_CAST "soap", BAD_CAST "Envelope",
	    BAD_CAST(m->soap == 12 ? SOAP12_NS : SOAP11_NS)));
	W(xmlTextWriterStartElementNS(
	    w, BAD_CAST "soap", BAD_CAST "Body", NULL));
	W(xmlTextWriterStartElementNS(w, BAD_CAST "dre",
	    BAD_CAST "ProductMerchandiseViewReplicationBulkConfirmation",
	    BAD_CAST ACK_NS));
	W(xmlTextWriterStartElement(w, BAD_CAST "MessageHeader"));
	W(xmlTextWriterWriteElement(
	    w, BAD_CAST "ReferenceID", BAD_CAST m->id));
	W(xmlTextWriterWriteElement(
	    w, BAD_CAST "CreationDateTime", BAD_CAST now));
	W(xmlTextWriterEndElement(w));
	W(xmlTextWriterWriteElement(w, BAD_CAST "Status", BAD_CAST status));
	if (job_id != NULL)
		W(xmlTextWriterWriteElement(
		    w, BAD_CAST "ImportJobID", BAD_CAST job_id));
	W(xmlTextWriterWriteElement(
	    w, BAD_CAST "ProductCount", BAD_CAST count));
	W(xmlTextWriterEndDocument(w)); // closes every open element
#undef W
	xmlFreeTextWriter(w); // flushes into buf
	if (rc >= 0)
		dre_buf_append(
		    out, xmlBufferContent(buf), (size_t) xmlBufferLength(buf));
	xmlBufferFree(buf);
	if (rc < 0)
		return DRE_EINVAL;
	return out->oom ? DRE_ENOMEM : DRE_OK;
}
