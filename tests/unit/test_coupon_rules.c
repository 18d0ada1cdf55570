// test_coupon_rules.c -- the coupon rules: states, reasons, the code
// alphabet, every use/activation decision, validity and the issue window.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rules.h"

#define T0 1780000000000LL // an instant in 2026

static cp_type_rules
individual(void)
{
	return (cp_type_rules) { .generic = false,
		.active = true,
		.stackable = true,
		.max_redemptions = 1 };
}

static cp_type_rules
generic(int64_t max, int64_t per_customer)
{
	return (cp_type_rules) { .generic = true,
		.active = true,
		.stackable = true,
		.max_redemptions = max,
		.max_per_customer = per_customer };
}

static cp_code_rules
code(cp_state st)
{
	return (cp_code_rules) { .state = st, .customer = "", .res_tx = "" };
}

static void
test_names(void **state)
{
	(void) state;
	const char *names[] = { "CREATED", "ACTIVE", "RESERVED", "REDEEMED",
		"EXPIRED", "CANCELLED" };
	for (int i = 0; i < CP_NSTATES; i++) {
		assert_string_equal(cp_state_name((cp_state) i), names[i]);
		assert_int_equal(cp_state_parse(names[i]), i);
		assert_int_equal(cp_state_terminal((cp_state) i), i >= 3);
	}
	assert_int_equal(cp_state_parse("active"), -1);
	assert_int_equal(cp_state_parse(NULL), -1);
	assert_string_equal(
	    cp_reason_name(CP_R_RESERVED_BY_OTHER), "RESERVED_BY_OTHER");
	assert_string_equal(
	    cp_reason_name(CP_R_NOT_STACKABLE), "NOT_STACKABLE");
	assert_string_equal(cp_reason_name(CP_R_UNAVAILABLE), "UNAVAILABLE");
	// The stable reason codes (PRODUCT-DECISIONS §5 and evaluate's).
	const char *stable[] = { "OK", "NOT_FOUND", "NOT_ACTIVE_YET",
		"EXPIRED", "REDEEMED", "RESERVED_BY_OTHER", "OTHER_CUSTOMER",
		"NOT_STACKABLE", "LIMIT_REACHED", "CANCELLED", "INACTIVE",
		"DUPLICATE", "UNAVAILABLE" };
	assert_int_equal(CP_NREASONS, sizeof stable / sizeof stable[0]);
	for (int r = 0; r < CP_NREASONS; r++) {
		assert_string_equal(cp_reason_name((cp_reason) r), stable[r]);
		assert_true(cp_reason_text((cp_reason) r)[0] != '\0');
	}
}

static void
test_normalize(void **state)
{
	(void) state;
	char out[CP_CODE_MAX + 1];
	assert_true(cp_code_normalize(out, "summer-25_x", 11));
	assert_string_equal(out, "SUMMER-25_X");
	assert_false(cp_code_normalize(out, "", 0));
	assert_false(cp_code_normalize(out, "A B", 3));
	assert_false(cp_code_normalize(out, "\xc3\xa4", 2));
	char long51[52];
	memset(long51, 'A', 51);
	long51[51] = '\0';
	assert_false(cp_code_normalize(out, long51, 51));
	assert_true(cp_code_normalize(out, long51, 50));
	assert_true(cp_prefix_valid(""));
	assert_true(cp_prefix_valid("WEL-1_"));
	assert_false(cp_prefix_valid("wel"));
	assert_false(cp_prefix_valid("ABCDEFGHIJKLMNOPQRSTU")); // 21
}

// Every symbol of the alphabet appears, nothing else, roughly uniformly.
static void
test_generate(void **state)
{
	(void) state;
	char     c[CP_CODE_MAX + 1];
	unsigned count[256] = { 0 };
	int      n = 31 * 2000 / 10;
	for (int i = 0; i < n; i++) {
		assert_true(cp_code_generate(c, "PRE", 10));
		assert_int_equal(strlen(c), 13);
		assert_memory_equal(c, "PRE", 3);
		for (int j = 3; j < 13; j++)
			count[(unsigned char) c[j]]++;
	}
	for (int ch = 0; ch < 256; ch++) {
		bool in = ch != 0 && strchr(CP_ALPHABET, ch) != NULL;
		if (!in) {
			assert_int_equal(count[ch], 0);
			continue;
		}
		// expected 2000 each; a biased draw would be far off
		assert_true(count[ch] > 1700 && count[ch] < 2300);
	}
	assert_null(strpbrk(CP_ALPHABET, "0O1IL"));
	assert_int_equal(strlen(CP_ALPHABET), 31);
	assert_false(cp_code_generate(c, "ABCDEFGHIJKLMNOPQRST", 31));
	assert_true(cp_code_generate(c, "ABCDEFGHIJKLMNOPQRST", 30));
}

static void
test_individual_use(void **state)
{
	(void) state;
	cp_type_rules t = individual();
	cp_code_rules c = code(CP_ACTIVE);
	assert_int_equal(
	    cp_check_use(&c, &t, T0, T0, "T1", "", NULL), CP_R_OK);
	// terminal states
	c.state = CP_REDEEMED;
	assert_int_equal(
	    cp_check_use(&c, &t, T0, T0, "T1", "", NULL), CP_R_REDEEMED);
	c.state = CP_EXPIRED;
	assert_int_equal(
	    cp_check_use(&c, &t, T0, T0, "T1", "", NULL), CP_R_EXPIRED);
	c.state = CP_CANCELLED;
	assert_int_equal(
	    cp_check_use(&c, &t, T0, T0, "T1", "", NULL), CP_R_CANCELLED);
	// CREATED needs activation
	c.state = CP_CREATED;
	assert_int_equal(
	    cp_check_use(&c, &t, T0, T0, "T1", "", NULL), CP_R_NOT_ACTIVE_YET);
	// reserved: the holder may, others may not, a lapsed hold is gone
	c.state = CP_RESERVED;
	c.res_tx = "T1";
	c.res_until = T0 + 1000;
	assert_int_equal(
	    cp_check_use(&c, &t, T0, T0, "T1", "", NULL), CP_R_OK);
	assert_int_equal(cp_check_use(&c, &t, T0, T0, "T2", "", NULL),
	    CP_R_RESERVED_BY_OTHER);
	assert_int_equal(cp_check_use(&c, &t, T0, T0, "", "", NULL),
	    CP_R_RESERVED_BY_OTHER);
	assert_int_equal(
	    cp_check_use(&c, &t, T0, T0 + 1000, "T2", "", NULL), CP_R_OK);
	// inactive type
	c = code(CP_ACTIVE);
	t.active = false;
	assert_int_equal(
	    cp_check_use(&c, &t, T0, T0, "T1", "", NULL), CP_R_INACTIVE);
}

static void
test_validity(void **state)
{
	(void) state;
	cp_type_rules t = individual();
	cp_code_rules c = code(CP_ACTIVE);
	c.valid_from = T0;
	c.valid_to = T0 + 100;
	assert_int_equal(cp_check_use(&c, &t, T0 - 1, T0, "", "", NULL),
	    CP_R_NOT_ACTIVE_YET);
	assert_int_equal(cp_check_use(&c, &t, T0, T0, "", "", NULL), CP_R_OK);
	assert_int_equal(
	    cp_check_use(&c, &t, T0 + 100, T0, "", "", NULL), CP_R_OK);
	assert_int_equal(
	    cp_check_use(&c, &t, T0 + 101, T0, "", "", NULL), CP_R_EXPIRED);
	// the type's window narrows the code's
	t.valid_to = T0 + 50;
	assert_int_equal(
	    cp_check_use(&c, &t, T0 + 60, T0, "", "", NULL), CP_R_EXPIRED);
	assert_int_equal(cp_effective_valid_to(&c, &t), T0 + 50);
	t.valid_from = T0 + 10;
	assert_int_equal(cp_check_use(&c, &t, T0 + 5, T0, "", "", NULL),
	    CP_R_NOT_ACTIVE_YET);
	// birth: type window cut by validityDays
	int64_t from, to;
	t = individual();
	t.valid_to = T0 + 100LL * 86400000;
	cp_birth_validity(&t, 30, T0, &from, &to);
	assert_int_equal(from, 0);
	assert_int_equal(to, T0 + 30LL * 86400000);
	cp_birth_validity(&t, 0, T0, &from, &to);
	assert_int_equal(to, T0 + 100LL * 86400000);
	t.valid_to = 0;
	cp_birth_validity(&t, 0, T0, &from, &to);
	assert_int_equal(to, 0);
	// a hold never outlives the code
	assert_int_equal(cp_hold_until(T0, 1000, 0), T0 + 1000);
	assert_int_equal(cp_hold_until(T0, 1000, T0 + 10), T0 + 10);
}

static void
test_personal(void **state)
{
	(void) state;
	cp_type_rules t = individual();
	cp_code_rules c = code(CP_CREATED);
	c.customer = "ALICE";
	assert_int_equal(cp_check_use(&c, &t, T0, T0, "T", "BOB", NULL),
	    CP_R_OTHER_CUSTOMER);
	assert_int_equal(cp_check_use(&c, &t, T0, T0, "T", "ALICE", NULL),
	    CP_R_NOT_ACTIVE_YET);
	assert_int_equal(
	    cp_check_use(&c, &t, T0, T0, "T", "", NULL), CP_R_NOT_ACTIVE_YET);
	// activation: not by another customer; CREATED or active already
	assert_int_equal(
	    cp_check_activate(&c, &t, T0, "BOB"), CP_R_OTHER_CUSTOMER);
	assert_int_equal(cp_check_activate(&c, &t, T0, "ALICE"), CP_R_OK);
	c.valid_to = T0 - 1;
	assert_int_equal(cp_check_activate(&c, &t, T0, "ALICE"), CP_R_EXPIRED);
	c.valid_to = 0;
	t.active = false;
	assert_int_equal(
	    cp_check_activate(&c, &t, T0, "ALICE"), CP_R_INACTIVE);
	t.active = true;
	c.state = CP_ACTIVE;
	assert_int_equal(cp_check_activate(&c, &t, T0, "ALICE"), CP_R_OK);
	assert_int_equal(
	    cp_check_activate(&c, &t, T0, "BOB"), CP_R_OTHER_CUSTOMER);
	t.active = false;
	assert_int_equal(
	    cp_check_activate(&c, &t, T0, "ALICE"), CP_R_INACTIVE);
	t.active = true;
	// use: holding the code is the proof; a named customer must be its own
	assert_int_equal(
	    cp_check_use(&c, &t, T0, T0, "T", "ALICE", NULL), CP_R_OK);
	assert_int_equal(cp_check_use(&c, &t, T0, T0, "T", "", NULL), CP_R_OK);
	assert_int_equal(
	    cp_check_use(&c, &t, T0, T0, "T", NULL, NULL), CP_R_OK);
	assert_int_equal(cp_check_use(&c, &t, T0, T0, "T", "BOB", NULL),
	    CP_R_OTHER_CUSTOMER);
	// a use without a customer is counted for the code's own
	assert_string_equal(cp_customer_of_use("ALICE", ""), "ALICE");
	assert_string_equal(cp_customer_of_use("ALICE", NULL), "ALICE");
	assert_string_equal(cp_customer_of_use("ALICE", "BOB"), "BOB");
	assert_string_equal(cp_customer_of_use("", ""), "");
	c.state = CP_REDEEMED;
	assert_int_equal(
	    cp_check_activate(&c, &t, T0, "ALICE"), CP_R_REDEEMED);
	assert_int_equal(
	    cp_check_use(&c, &t, T0, T0, "T", "", NULL), CP_R_REDEEMED);
}

static void
test_generic(void **state)
{
	(void) state;
	cp_type_rules t = generic(10, 2);
	cp_code_rules c = code(CP_ACTIVE);
	cp_usage      u = { 0 };
	c.redemptions = 9;
	assert_int_equal(cp_check_use(&c, &t, T0, T0, "T", "C", &u), CP_R_OK);
	c.held = 1; // the last slot is held by someone else
	assert_int_equal(
	    cp_check_use(&c, &t, T0, T0, "T", "C", &u), CP_R_LIMIT_REACHED);
	u.own_hold = true; // ... by this transaction
	assert_int_equal(cp_check_use(&c, &t, T0, T0, "T", "C", &u), CP_R_OK);
	u.own_hold = false;
	c.held = 0;
	u.customer_uses = 2;
	assert_int_equal(
	    cp_check_use(&c, &t, T0, T0, "T", "C", &u), CP_R_LIMIT_REACHED);
	// an anonymous basket only counts against the total
	assert_int_equal(cp_check_use(&c, &t, T0, T0, "T", "", &u), CP_R_OK);
	u.customer_uses = 0;
	u.own_redeemed = true;
	assert_int_equal(
	    cp_check_use(&c, &t, T0, T0, "T", "C", &u), CP_R_REDEEMED);
	// exhausted: REDEEMED state reads as the limit
	c.state = CP_REDEEMED;
	assert_int_equal(
	    cp_check_use(&c, &t, T0, T0, "T", "C", NULL), CP_R_LIMIT_REACHED);
	// unlimited
	t = generic(0, 0);
	c = code(CP_ACTIVE);
	c.redemptions = 1000000;
	assert_int_equal(
	    cp_check_use(&c, &t, T0, T0, "T", "C", NULL), CP_R_OK);
}

static void
test_rate(void **state)
{
	(void) state;
	cp_rate r;
	int64_t retry = 0;
	memset(&r, 0, sizeof r);
	assert_int_equal(cp_rate_take(&r, 1000, 600, T0, &retry), 600);
	assert_int_equal(cp_rate_take(&r, 1000, 300, T0 + 10000, &retry), 300);
	// partial grant: 100 of 150, then none; retry when the first second
	// (T0) leaves the window
	assert_int_equal(cp_rate_take(&r, 1000, 150, T0 + 20000, &retry), 100);
	assert_int_equal(retry, 40);
	assert_int_equal(cp_rate_take(&r, 1000, 1, T0 + 59999, &retry), 0);
	assert_int_equal(retry, 1);
	// a minute after T0 its 600 are free again, the rest still count
	assert_int_equal(
	    cp_rate_take(&r, 1000, 1000, T0 + 60000, &retry), 600);
	assert_int_equal(retry, 10);
	// long after: everything free
	assert_int_equal(
	    cp_rate_take(&r, 1000, 1000, T0 + 3600000, &retry), 1000);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_normalize),
		cmocka_unit_test(test_generate),
		cmocka_unit_test(test_individual_use),
		cmocka_unit_test(test_validity),
		cmocka_unit_test(test_personal),
		cmocka_unit_test(test_generic),
		cmocka_unit_test(test_rate),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
