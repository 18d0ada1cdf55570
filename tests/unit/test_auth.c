// test_auth.c -- Basic credentials, roles and hostile headers.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dre/auth.h"

static void
expect_user(const dre_auth *a, const char *header, const char *principal,
    const char *tenant, uint32_t roles)
{
	dre_principal p;
	memset(&p, 0x5a, sizeof(p));
	dre_err rv = dre_auth_check(a, header, &p);
	if (rv != DRE_OK)
		fail_msg("'%s' rejected", header);
	assert_string_equal(p.principal, principal);
	assert_string_equal(p.tenant, tenant);
	assert_int_equal(p.roles, roles);
}

static void
expect_reject(const dre_auth *a, const char *header)
{
	dre_principal p;
	memset(&p, 0x5a, sizeof(p));
	if (dre_auth_check(a, header, &p) != DRE_EAUTH)
		fail_msg("'%s' accepted", header ? header : "(null)");
	// Output untouched on failure.
	assert_int_equal((unsigned char) p.tenant[0], 0x5a);
}

static void
test_dev_users(void **state)
{
	dre_auth *a = NULL;
	assert_int_equal(dre_auth_open(&a, NULL, true), DRE_OK);
	// admin:admin, pos-reader:pos, promo-manager:promo,
	// budget-manager:budget, api-writer:api
	expect_user(
	    a, "Basic YWRtaW46YWRtaW4=", "admin", "default", DRE_ROLE(ADMIN));
	expect_user(a, "Basic cG9zLXJlYWRlcjpwb3M=", "pos-reader", "default",
	    DRE_ROLE(POS_READER));
	expect_user(a, "Basic cHJvbW8tbWFuYWdlcjpwcm9tbw==", "promo-manager",
	    "default", DRE_ROLE(PROMOTION_MANAGER));
	expect_user(a, "Basic YnVkZ2V0LW1hbmFnZXI6YnVkZ2V0", "budget-manager",
	    "default", DRE_ROLE(BUDGET_MANAGER));
	expect_user(a, "Basic YXBpLXdyaXRlcjphcGk=", "api-writer", "default",
	    DRE_ROLE(PUBLIC_API_WRITER));
	// Scheme is case-insensitive, padding optional, blanks tolerated.
	expect_user(a, "basic   YWRtaW46YWRtaW4 ", "admin", "default",
	    DRE_ROLE(ADMIN));
	expect_reject(a, "Basic YWRtaW46YWRtaW5h"); // admin:admina
	expect_reject(a, "Basic YWRtaW46YWRtaQ=="); // admin:admi
	expect_reject(a, "Basic YWRtaW46"); // admin:
	expect_reject(a, "Basic cG9zLXJlYWRlcjphZG1pbg=="); // pos-reader:admin
	expect_reject(a, "Basic QURNSU46YWRtaW4="); // ADMIN:admin
	dre_auth_close(a);

	// Without dev users nobody gets in.
	assert_int_equal(dre_auth_open(&a, "", false), DRE_OK);
	expect_reject(a, "Basic YWRtaW46YWRtaW4=");
	dre_auth_close(a);
	dre_auth_close(NULL);
}

static void
test_configured_users(void **state)
{
	dre_auth *a = NULL;
	assert_int_equal(
	    dre_auth_open(&a,
	        " alice:s3:cr:et:PromotionManager+PromotionApprover:"
	        "t1 ; bob:pw:SyncService:t2,admin:other:POSReader:t3",
	        true),
	    DRE_OK);
	// alice:s3:cr:et -- the password holds colons.
	expect_user(a, "Basic YWxpY2U6czM6Y3I6ZXQ=", "alice", "t1",
	    DRE_ROLE(PROMOTION_MANAGER) | DRE_ROLE(PROMOTION_APPROVER));
	expect_user(a, "Basic Ym9iOnB3", "bob", "t2", DRE_ROLE(SYNC_SERVICE));
	// A configured user wins over the dev user of the same name.
	expect_user(
	    a, "Basic YWRtaW46b3RoZXI=", "admin", "t3", DRE_ROLE(POS_READER));
	// The dev users are still there.
	expect_user(a, "Basic cG9zLXJlYWRlcjpwb3M=", "pos-reader", "default",
	    DRE_ROLE(POS_READER));
	dre_auth_close(a);

	a = (dre_auth *) 1;
	assert_int_equal(
	    dre_auth_open(&a, "x:y:NoSuchRole:t", false), DRE_ECONFIG);
	assert_int_equal(dre_auth_open(&a, "x:y:Admin", false), DRE_ECONFIG);
	assert_int_equal(dre_auth_open(&a, "x:y:Admin:", false), DRE_ECONFIG);
	assert_int_equal(dre_auth_open(&a, ":y:Admin:t", false), DRE_ECONFIG);
	assert_int_equal(dre_auth_open(&a, "x:y::t", false), DRE_ECONFIG);
	assert_int_equal(
	    dre_auth_open(&a, "x:y:Admin+:t", false), DRE_ECONFIG);
	assert_ptr_equal(a, (dre_auth *) 1);
}

static void
test_hostile(void **state)
{
	dre_auth *a = NULL;
	assert_int_equal(dre_auth_open(&a, NULL, true), DRE_OK);
	expect_reject(a, NULL);
	expect_reject(a, "");
	expect_reject(a, "Basic");
	expect_reject(a, "Basic ");
	expect_reject(a, "Basic=YWRtaW46YWRtaW4=");
	expect_reject(a, "Bearer YWRtaW46YWRtaW4=");
	expect_reject(a, "BasicYWRtaW46YWRtaW4=");
	expect_reject(a, "Basic YWRtaW4"); // "admin": no colon
	expect_reject(a, "Basic !!!!");
	expect_reject(a, "Basic YWRt aW46YWRtaW4=");
	expect_reject(a, "Basic YWRtaW46YWRtaW4=x");
	expect_reject(a, "Basic Y"); // impossible length
	expect_reject(a, "Basic YW=RtaW46YWRtaW4");
	expect_reject(a, "Basic YWRtaW46YWRtaW4\x01");
	expect_reject(a, "Basic \xff\xfe");
	// Huge headers of valid base64 and of garbage.
	size_t n = 1 << 20;
	char  *big = malloc(n + 1);
	assert_non_null(big);
	memcpy(big, "Basic ", 6);
	memset(big + 6, 'A', n - 6);
	big[n] = '\0';
	expect_reject(a, big);
	memset(big + 6, ':', n - 6);
	expect_reject(a, big);
	// Just under the limit: decodes, then fails as an unknown user.
	big[1000] = '\0';
	memset(big + 6, 'Q', 994);
	expect_reject(a, big);
	free(big);
	dre_auth_close(a);
}

static void
test_roles(void **state)
{
	assert_int_equal(dre_role_parse("Admin"), DRE_ROLE(ADMIN));
	assert_int_equal(dre_role_parse("MasterDataIngester"),
	    DRE_ROLE(MASTER_DATA_INGESTER));
	assert_int_equal(dre_role_parse("admin"), 0);
	assert_int_equal(dre_role_parse(""), 0);
	assert_int_equal(dre_role_parse(NULL), 0);
	assert_string_equal(dre_role_name(DRE_ROLE(POS_READER)), "POSReader");
	assert_null(dre_role_name(0));
	assert_null(dre_role_name(DRE_ROLE(ADMIN) | DRE_ROLE(POS_READER)));
	assert_null(dre_role_name(1u << 31));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dev_users),
		cmocka_unit_test(test_configured_users),
		cmocka_unit_test(test_hostile),
		cmocka_unit_test(test_roles),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
