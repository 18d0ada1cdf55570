// test_webhook_guard.c -- the webhook SSRF guard (http, loopback, private,
// link-local, unique-local and multicast targets refused unless insecure
// URLs are allowed), secrets and both signatures against known values.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "webhook.h"

static bool
url_ok(const char *url, bool insecure)
{
	char why[160];
	return dre_net_url_check(url, insecure, why, sizeof why);
}

static void
test_urls(void **state)
{
	(void) state;
	assert_true(url_ok("https://hooks.example.com/x", false));
	assert_true(url_ok("https://8.8.8.8/x", false));
	assert_false(url_ok("http://hooks.example.com/x", false));
	assert_false(url_ok("ftp://hooks.example.com/x", false));
	assert_false(url_ok("not a url", false));
	assert_false(url_ok("https://127.0.0.1/x", false));
	assert_false(url_ok("https://localhost/x", false));
	assert_false(url_ok("https://10.1.2.3/x", false));
	assert_false(url_ok("https://172.16.0.1/x", false));
	assert_false(url_ok("https://192.168.1.1/x", false));
	assert_false(url_ok("https://169.254.169.254/latest", false));
	assert_false(url_ok("https://[::1]/x", false));
	assert_false(url_ok("https://[fe80::1]/x", false));
	assert_false(url_ok("https://[fd00::1]/x", false));
	assert_false(url_ok("https://[::ffff:127.0.0.1]/x", false));
	assert_false(url_ok("https://224.0.0.1/x", false));
	assert_false(url_ok("https://0.0.0.0/x", false));
	// The dev and test stacks' flag.
	assert_true(url_ok("http://127.0.0.1:8080/x", true));
	assert_true(url_ok("http://localhost/x", true));
	assert_false(url_ok("ftp://127.0.0.1/x", true));
}

static bool
v4(const char *a)
{
	struct sockaddr_in s = { .sin_family = AF_INET };
	inet_pton(AF_INET, a, &s.sin_addr);
	return dre_net_addr_allowed((struct sockaddr *) &s, false);
}

static bool
v6(const char *a)
{
	struct sockaddr_in6 s = { .sin6_family = AF_INET6 };
	inet_pton(AF_INET6, a, &s.sin6_addr);
	return dre_net_addr_allowed((struct sockaddr *) &s, false);
}

static void
test_addresses(void **state)
{
	(void) state;
	assert_true(v4("93.184.216.34"));
	assert_false(v4("127.0.0.1"));
	assert_false(v4("10.0.0.1"));
	assert_false(v4("100.64.0.1"));
	assert_false(v4("172.31.255.255"));
	assert_true(v4("172.32.0.1"));
	assert_false(v4("192.168.0.1"));
	assert_false(v4("169.254.169.254"));
	assert_false(v4("239.1.1.1"));
	assert_false(v4("255.255.255.255"));
	assert_true(v6("2606:4700::1111"));
	assert_false(v6("::1"));
	assert_false(v6("::"));
	assert_false(v6("fe80::1"));
	assert_false(v6("fc00::1"));
	assert_false(v6("ff02::1"));
	assert_false(v6("::ffff:10.0.0.1"));
	struct sockaddr_in s = { .sin_family = AF_INET };
	inet_pton(AF_INET, "127.0.0.1", &s.sin_addr);
	assert_true(dre_net_addr_allowed((struct sockaddr *) &s, true));
}

static void
test_secrets_and_signatures(void **state)
{
	(void) state;
	char s[80];
	assert_int_equal(DRE_OK, wh_secret_new(s, sizeof s));
	assert_int_equal(0, strncmp(s, "whsec_", 6));
	assert_true(wh_secret_valid(s));
	unsigned char key[64];
	assert_int_equal(24, wh_secret_key(key, sizeof key, s));
	assert_false(wh_secret_valid("sekrit"));
	assert_false(wh_secret_valid("whsec_!!!!"));
	assert_false(wh_secret_valid("whsec_YWJj")); // 3 bytes: too short

	// Known values (Python: hmac.new(b"0123456789abcdef", msg, sha256)).
	const char *sec = "whsec_MDEyMzQ1Njc4OWFiY2RlZg==";
	size_t      kl = wh_secret_key(key, sizeof key, sec);
	assert_int_equal(16, kl);
	char std[128], dre[80];
	wh_sign_std(std, sizeof std, key, kl, "msg_1", 1700000000, "{}", 2);
	wh_sign_dre(dre, sizeof dre, key, kl, "{}", 2);
	assert_string_equal(
	    "v1,3uojc/2kvL+KpJkw4ZNrA/5YjEs9cdfKdc3lXIvRjkk=", std);
	assert_string_equal("sha256=f91e3e9f05cc2df64ac1c26f8adccdffda8d1e4a"
	                    "7a8c50a1a08eeadac6ddfec5",
	    dre);

	// Sealed at rest: not the secret, and back again.
	unsigned char mk[WH_SECRET_KEY_LEN] = { 1, 2, 3 };
	dre_buf       b = { 0 };
	assert_int_equal(DRE_OK, dre_seal(&b, mk, s));
	assert_null(strstr(b.data, s + 6));
	char back[128];
	assert_int_equal(DRE_OK, dre_unseal(back, sizeof back, mk, b.data));
	assert_string_equal(s, back);
	mk[0] = 9;
	assert_int_not_equal(
	    DRE_OK, dre_unseal(back, sizeof back, mk, b.data));
	dre_buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_urls),
		cmocka_unit_test(test_addresses),
		cmocka_unit_test(test_secrets_and_signatures),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
