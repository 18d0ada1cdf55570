// test_masterdata.c -- S/4HANA DRFOUT messages read from SOAP and JSON
// (catalog/masterdata.c): the products and their article rows, the
// hardened XML parser's refusals, the acknowledgement's exact bytes.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "dre/arena.h"
#include "dre/json.h"
#include "masterdata.h"

static const md_limits lim = { 4096, 16 };

static const char sample[]
    = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<e:Envelope xmlns:e=\"http://schemas.xmlsoap.org/soap/envelope/\">"
      "<e:Header/><e:Body>"
      "<n0:ProductMerchandiseViewReplicationBulkRequest "
      "xmlns:n0=\"http://sap.com/xi/RTLDMF/Global2\">"
      "<MessageHeader><ID>M-1</ID>"
      "<SenderBusinessSystemID>S4H</SenderBusinessSystemID>"
      "<CreationDateTime>2026-12-06T07:30:00Z</CreationDateTime>"
      "</MessageHeader>"
      "<ProductMerchandiseView><Product><ProductID> 100234 </ProductID>"
      "<Description><Description languageCode=\"DE\">Kola</Description>"
      "<Description languageCode=\"EN\">Cola &amp; &lt;Lemon&gt;"
      "</Description></Description>"
      "<GlobalTradeItemNumber>4006381333931</GlobalTradeItemNumber>"
      "<MerchandiseCategoryID>FOOD01</MerchandiseCategoryID>"
      "<ManufacturerID>M-17</ManufacturerID>"
      "<ManufacturerName><![CDATA[ACME \"Drinks\"]]></ManufacturerName>"
      "</Product></ProductMerchandiseView>"
      "<ProductMerchandiseView><Product><ProductID>100235</ProductID>"
      "<Description>Water</Description></Product>"
      "</ProductMerchandiseView>"
      "</n0:ProductMerchandiseViewReplicationBulkRequest>"
      "</e:Body></e:Envelope>";

static dre_err
soap(md_message *m, dre_arena *a, const char *xml, md_error *e)
{
	return md_parse_soap(m, a, xml, strlen(xml), &lim, e);
}

static void
test_soap_products_and_rows(void **state)
{
	dre_arena *a = dre_arena_alloc(0);
	md_message m;
	md_error   e;
	dre_buf    rows = { 0 };
	assert_int_equal(soap(&m, a, sample, &e), DRE_OK);
	assert_int_equal(m.soap, 11);
	assert_string_equal(m.id, "M-1");
	assert_string_equal(m.sender, "S4H");
	assert_string_equal(m.created, "2026-12-06T07:30:00Z");
	assert_int_equal(m.n, 2);
	md_articles(&rows, &m);
	assert_string_equal(rows.data,
	    "[\n{\"articleNumber\":\"100234\",\"name\":\"Cola & <Lemon>\","
	    "\"ean\":\"4006381333931\",\"articleGroupId\":\"FOOD01\","
	    "\"manufacturer\":\"ACME \\\"Drinks\\\"\","
	    "\"manufacturerId\":\"M-17\"},\n"
	    "{\"articleNumber\":\"100235\",\"name\":\"Water\"}\n]\n");
	dre_buf_free(&rows);
	dre_arena_free(a);
}

// refused parses xml and checks the answer's status, code and the start
// of its message.
static void
refused(const char *xml, int status, const char *code, const char *msg)
{
	dre_arena *a = dre_arena_alloc(0);
	md_message m;
	md_error   e;
	assert_int_equal(soap(&m, a, xml, &e), DRE_EINVAL);
	assert_int_equal(e.status, status);
	assert_string_equal(e.code, code);
	if (strncmp(e.message, msg, strlen(msg)) != 0)
		fail_msg("message \"%s\" does not start with \"%s\"",
		    e.message, msg);
	dre_arena_free(a);
}

static void
test_hostile(void **state)
{
	// Billion laughs, an external entity, an external DTD: the DOCTYPE
	// itself is refused.
	refused("<?xml version=\"1.0\"?><!DOCTYPE l [<!ENTITY a \"aaaa\">"
	        "<!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;\">]><l>&b;</l>",
	    400, "MALFORMED_XML", "a DOCTYPE is not allowed");
	refused("<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>"
	        "<x>&e;</x>",
	    400, "MALFORMED_XML", "a DOCTYPE is not allowed");
	refused("<!DOCTYPE x SYSTEM \"http://127.0.0.1:9/x.dtd\"><x/>", 400,
	    "MALFORMED_XML", "a DOCTYPE is not allowed");
	// An undeclared entity is an error, not an expansion.
	refused("<x>&e;</x>", 400, "MALFORMED_XML",
	    "malformed XML at line 1, column 7: Entity 'e' not defined");
	char deep[512] = "";
	for (int i = 0; i < 17; i++)
		strcat(deep, "<d>");
	refused(deep, 400, "MALFORMED_XML",
	    "the XML nests elements deeper than 16 levels");
	char big[5000];
	memset(big, ' ', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	refused(big, 413, "PAYLOAD_TOO_LARGE",
	    "the message has 4999 bytes, more than the 4096");
	refused("", 400, "MALFORMED_XML", "the body is empty");
	refused("<a>\n  <b></c>\n</a>", 400, "MALFORMED_XML",
	    "malformed XML at line 2, column 10: Opening and ending tag "
	    "mismatch: b line 2 and c");
	refused("<Envelope><Body/></Envelope>", 400, "VALIDATION_FAILED",
	    "the body must be a SOAP 1.1");
	// libxml2's message quotes a long name of 2-byte characters: cut at
	// its buffer before a character (fuzz_masterdata: the error body was
	// not UTF-8).
	char       name[256] = "<a", xml[600];
	dre_arena *a = dre_arena_alloc(0);
	md_message m;
	md_error   e;
	for (int i = 0; i < 100; i++)
		strcat(name, "\xc3\xa9");
	snprintf(xml, sizeof xml, "%s></b>", name);
	assert_int_equal(soap(&m, a, xml, &e), DRE_EINVAL);
	assert_string_equal(e.code, "MALFORMED_XML");
	assert_non_null(strstr(e.message,
	    "Opening and ending tag mismatch: a"
	    "\xc3\xa9\xc3\xa9"));
	assert_true(dre_utf8_valid(e.message, strlen(e.message), NULL));
	dre_arena_free(a);
	// Bytes the declared encoding cannot convert: refused, and nothing
	// written to stderr (libxml2's generic handler wrote "encoding error
	// : input conversion failed ..." lines past the service's log; seen
	// in fuzz_masterdata's output).
	FILE *t = tmpfile();
	int   saved = dup(2);
	assert_non_null(t);
	assert_true(saved >= 0);
	fflush(stderr);
	assert_true(dup2(fileno(t), 2) == 2);
	refused("<?xml version=\"1.0\" encoding=\"EUC-JP\"?><a>\xff\xfe</a>",
	    400, "MALFORMED_XML", "malformed XML at line 1");
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	struct stat st;
	assert_int_equal(fstat(fileno(t), &st), 0);
	assert_int_equal(st.st_size, 0);
	fclose(t);
	refused("<e:Envelope xmlns:e=\"http://www.w3.org/2003/05/"
	        "soap-envelope\"><e:Body><X/></e:Body></e:Envelope>",
	    400, "VALIDATION_FAILED",
	    "the SOAP Body must hold a "
	    "ProductMerchandiseViewReplicationBulkRequest");
}

static void
test_json(void **state)
{
	dre_arena *a = dre_arena_alloc(0);
	dre_json  *root = NULL;
	md_message m;
	md_error   e;
	dre_buf    rows = { 0 };
	const char doc[]
	    = "{\"MessageHeader\":{\"ID\":\"M-2\"},\"ProductMerchandiseView\":"
	      "["
	      "{\"Product\":{\"ProductID\":\"7\",\"Description\":[{"
	      "\"languageCode\":\"DE\",\"Description\":\"Sieben\"},{"
	      "\"languageCode\":\"EN\",\"Description\":\"Seven\"}]}}]}";
	assert_int_equal(
	    dre_json_parse(&root, a, doc, sizeof doc - 1, 16, NULL), DRE_OK);
	assert_int_equal(md_parse_json(&m, a, root, &e), DRE_OK);
	assert_int_equal(m.soap, 0);
	md_articles(&rows, &m);
	assert_string_equal(
	    rows.data, "[\n{\"articleNumber\":\"7\",\"name\":\"Seven\"}\n]\n");
	const char nohdr[] = "{\"ProductMerchandiseView\":[]}";
	assert_int_equal(
	    dre_json_parse(&root, a, nohdr, sizeof nohdr - 1, 16, NULL),
	    DRE_OK);
	assert_int_equal(md_parse_json(&m, a, root, &e), DRE_EINVAL);
	assert_string_equal(e.target, "MessageHeader.ID");
	// MD_ID_MAX counts characters: 100 of two bytes each are accepted,
	// 101 refused.
	char   idmsg[512];
	char   id[2 * (MD_ID_MAX + 1) + 1];
	size_t k = 0;
	for (int n = MD_ID_MAX; n <= MD_ID_MAX + 1; n++) {
		for (k = 0; k < (size_t) n; k++)
			memcpy(id + 2 * k, "\xc3\xa9", 2);
		id[2 * k] = '\0';
		snprintf(idmsg, sizeof idmsg,
		    "{\"MessageHeader\":{\"ID\":\"%s\"},"
		    "\"ProductMerchandiseView\":[{\"Product\":{"
		    "\"ProductID\":\"7\"}}]}",
		    id);
		assert_int_equal(
		    dre_json_parse(&root, a, idmsg, strlen(idmsg), 16, NULL),
		    DRE_OK);
		assert_int_equal(md_parse_json(&m, a, root, &e),
		    n == MD_ID_MAX ? DRE_OK : DRE_EINVAL);
	}
	dre_buf_free(&rows);
	dre_arena_free(a);
}

static void
test_ack(void **state)
{
	md_message m = { .id = "M<&>", .n = 2, .soap = 12 };
	dre_buf    b = { 0 };
	// 2026-12-06T07:30:01.112Z
	assert_int_equal(
	    md_soap_ack(&b, &m, "catalog-1", "ACCEPTED", 1796542201112LL),
	    DRE_OK);
	assert_string_equal(b.data,
	    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	    "<soap:Envelope "
	    "xmlns:soap=\"http://www.w3.org/2003/05/soap-envelope\">"
	    "<soap:Body><dre:"
	    "ProductMerchandiseViewReplicationBulkConfirmation "
	    "xmlns:dre=\"urn:dre:master-data:drfout\"><MessageHeader>"
	    "<ReferenceID>M&lt;&amp;&gt;</ReferenceID>"
	    "<CreationDateTime>2026-12-06T07:30:01.112Z</CreationDateTime>"
	    "</MessageHeader><Status>ACCEPTED</Status>"
	    "<ImportJobID>catalog-1</ImportJobID>"
	    "<ProductCount>2</ProductCount>"
	    "</dre:ProductMerchandiseViewReplicationBulkConfirmation>"
	    "</soap:Body></soap:Envelope>\n");
	assert_string_equal(
	    md_soap_content_type(12), "application/soap+xml; charset=utf-8");
	dre_buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_soap_products_and_rows),
		cmocka_unit_test(test_hostile),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_ack),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
