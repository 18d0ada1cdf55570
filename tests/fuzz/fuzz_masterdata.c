// fuzz_masterdata.c -- libFuzzer target for the S/4HANA DRFOUT messages of
// the catalog (services/catalog/masterdata.c): the input is read as the
// JSON form (md_parse_json after dre_json_parse, as POST
// /api/v1/MasterData/Products) and as a SOAP envelope (md_parse_soap with
// the catalog's default limits).
//
// Oracle: a refused message is a 400 or 413 with a code and a message,
// valid UTF-8 when the input is, in an error body our reader accepts; an
// accepted one has an ID and products, its article rows (md_articles) are a
// JSON array of one object per product that our reader accepts, and a SOAP
// message's acknowledgement (md_soap_ack) is well-formed XML echoing its ID,
// the same bytes each time.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "dre/arena.h"
#include "dre/buf.h"
#include "dre/evalwire.h"
#include "dre/json.h"
#include "masterdata.h"

#include "fuzz.h"

static const md_limits limits = { 1 << 20, 32 }; // catalog's defaults

static void
check_refusal(dre_arena *a, const md_error *e, bool input_utf8)
{
	CHECK(e->status == 400 || e->status == 413);
	CHECK(e->code != NULL && e->code[0] != '\0');
	CHECK(memchr(e->target, '\0', sizeof e->target) != NULL);
	CHECK(memchr(e->message, '\0', sizeof e->message) != NULL);
	CHECK(e->message[0] != '\0');
	if (!input_utf8)
		return;
	if (!fuzz_utf8(e->target) || !fuzz_utf8(e->message)) {
		fprintf(stderr, "error not UTF-8: target '%s' message '%s'\n",
		    e->target, e->message);
		abort();
	}
	dre_buf b = { 0 };
	dre_error_body_write(
	    &b, e->code, e->message, e->target[0] != '\0' ? e->target : NULL);
	CHECK(!b.oom);
	(void) fuzz_parse_json(a, "error body", b.data, b.len);
	dre_buf_free(&b);
}

// check_articles: the rows of m are a JSON array of one object per
// product, each member a non-empty string.
static void
check_articles(dre_arena *a, const md_message *m)
{
	dre_buf b = { 0 };
	md_articles(&b, m);
	CHECK(!b.oom);
	CHECK(dre_utf8_valid(b.data, b.len, NULL));
	const dre_json *root
	    = fuzz_parse_json(a, "md_articles", b.data, b.len);
	CHECK(dre_json_is(root, DRE_JSON_ARRAY) && root->len == m->n);
	size_t i = 0;
	for (const dre_json *d = root->child; d != NULL; d = d->next, i++) {
		CHECK(dre_json_is(d, DRE_JSON_OBJECT) && d->len <= 6);
		for (const dre_json *v = d->child; v != NULL; v = v->next)
			CHECK(dre_json_is(v, DRE_JSON_STRING) && v->len > 0);
		const dre_json *num = dre_json_get(d, "articleNumber");
		CHECK((num == NULL) == (m->products[i].number == NULL));
		CHECK(num == NULL
		    || strcmp(num->str, m->products[i].number) == 0);
	}
	dre_buf_free(&b);
}

// xml_text returns the text of the first element named local under n
// (depth first), NULL when there is none. Caller frees with xmlFree.
static xmlChar *
xml_text(const xmlNode *n, const char *local)
{
	for (; n != NULL; n = n->next) {
		if (n->type != XML_ELEMENT_NODE)
			continue;
		if (strcmp((const char *) n->name, local) == 0)
			return xmlNodeGetContent(n);
		xmlChar *t = xml_text(n->children, local);
		if (t != NULL)
			return t;
	}
	return NULL;
}

static void
check_ack(const md_message *m)
{
	dre_buf b1 = { 0 }, b2 = { 0 };
	CHECK(md_soap_ack(&b1, m, "30000000-0000-4000-8000-000000000001",
	          "ACCEPTED", 1767225600123)
	    == DRE_OK);
	CHECK(md_soap_ack(&b2, m, "30000000-0000-4000-8000-000000000001",
	          "ACCEPTED", 1767225600123)
	    == DRE_OK);
	CHECK(b1.len == b2.len && memcmp(b1.data, b2.data, b1.len) == 0);
	CHECK(dre_utf8_valid(b1.data, b1.len, NULL));
	xmlDocPtr doc
	    = xmlReadMemory(b1.data, (int) b1.len, "ack.xml", "UTF-8",
	        XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (doc == NULL) {
		fprintf(stderr, "ack is not well-formed XML: %.*s\n",
		    (int) b1.len, b1.data);
		abort();
	}
	const xmlNode *root = xmlDocGetRootElement(doc);
	CHECK(root != NULL
	    && strcmp((const char *) root->name, "Envelope") == 0);
	xmlChar *ref = xml_text(root, "ReferenceID");
	CHECK(ref != NULL && strcmp((const char *) ref, m->id) == 0);
	xmlFree(ref);
	xmlFreeDoc(doc);
	dre_buf_free(&b1);
	dre_buf_free(&b2);
}

static void
check_message(dre_arena *a, const md_message *m)
{
	CHECK(m->id != NULL && m->id[0] != '\0');
	CHECK(m->n > 0 && m->products != NULL);
	check_articles(a, m);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *) data;
	bool        input_utf8 = dre_utf8_valid(text, size, NULL);
	dre_arena  *a = dre_arena_alloc(0);
	dre_json   *root = NULL;
	md_message  m;
	md_error    e;
	dre_err     err;

	CHECK(a != NULL);
	if (dre_json_parse(&root, a, text, size, DRE_JSON_MAX_DEPTH, NULL)
	    == DRE_OK) {
		memset(&e, 0, sizeof e);
		err = md_parse_json(&m, a, root, &e);
		if (err == DRE_EINVAL) {
			check_refusal(a, &e, true);
		} else {
			CHECK(err == DRE_OK && m.soap == 0);
			check_message(a, &m);
		}
	}
	memset(&e, 0, sizeof e);
	err = md_parse_soap(&m, a, text, size, &limits, &e);
	if (err == DRE_EINVAL) {
		check_refusal(a, &e, input_utf8);
	} else {
		CHECK(err == DRE_OK && (m.soap == 11 || m.soap == 12));
		check_message(a, &m);
		check_ack(&m);
	}
	dre_arena_free(a);
	return 0;
}
