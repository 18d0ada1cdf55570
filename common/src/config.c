// config.c -- fills a service's config struct from its option table.
//
// Precedence: defaults < file < environment < command line; kafka.* keys
// are passed through to librdkafka.
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dre/config.h"
#include "dre/log.h"
#include "dre/version.h"

#define KAFKA_PREFIX     "kafka."
#define KAFKA_PREFIX_LEN (sizeof(KAFKA_PREFIX) - 1)
#define ENV_PREFIX       "DRE_"

extern char **environ;

void
dre_kvlist_set(dre_kvlist *l, const char *key, const char *val)
{
	for (size_t i = 0; i < l->n; i++) {
		if (strcmp(l->keys[i], key) == 0) {
			char *v = strdup(val);
			if (v == NULL)
				return;
			free(l->vals[i]);
			l->vals[i] = v;
			return;
		}
	}
	char **keys = realloc(l->keys, (l->n + 1) * sizeof(*keys));
	if (keys == NULL)
		return;
	l->keys = keys;
	char **vals = realloc(l->vals, (l->n + 1) * sizeof(*vals));
	if (vals == NULL)
		return;
	l->vals = vals;
	char *k = strdup(key);
	char *v = strdup(val);
	if (k == NULL || v == NULL) {
		free(k);
		free(v);
		return;
	}
	l->keys[l->n] = k;
	l->vals[l->n] = v;
	l->n++;
}

const char *
dre_kvlist_get(const dre_kvlist *l, const char *key)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->keys[i], key) == 0)
			return l->vals[i];
	return NULL;
}

void
dre_kvlist_free(dre_kvlist *l)
{
	if (l == NULL)
		return;
	for (size_t i = 0; i < l->n; i++) {
		free(l->keys[i]);
		free(l->vals[i]);
	}
	free(l->keys);
	free(l->vals);
	l->keys = NULL;
	l->vals = NULL;
	l->n = 0;
}

static const dre_cfg_opt *
opt_find(const dre_cfg_opt *table, const char *name, size_t len)
{
	for (const dre_cfg_opt *o = table; o->name != NULL; o++)
		if (strlen(o->name) == len && memcmp(o->name, name, len) == 0)
			return o;
	return NULL;
}

static dre_err
parse_bool(bool *out, const char *v)
{
	static const char *const yes[] = { "true", "1", "yes", "on" };
	static const char *const no[] = { "false", "0", "no", "off" };
	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			*out = true;
			return DRE_OK;
		}
		if (strcasecmp(v, no[i]) == 0) {
			*out = false;
			return DRE_OK;
		}
	}
	return DRE_EINVAL;
}

// one_of reports whether v is one of the '|'-separated choices.
static bool
one_of(const char *choices, const char *v)
{
	size_t n = strlen(v);
	for (const char *c = choices; *c != '\0';) {
		size_t l = strcspn(c, "|");
		if (l == n && strncmp(c, v, n) == 0)
			return true;
		c += l + (c[l] == '|');
	}
	return false;
}

// range_text describes an integer option's bounds ("1..65535", "at least
// 1"); static storage, one caller at a time (start-up).
static const char *
range_text(const dre_cfg_opt *o)
{
	static char buf[64];
	if (o->max == INT64_MAX)
		snprintf(
		    buf, sizeof(buf), "at least %lld", (long long) o->min);
	else
		snprintf(buf, sizeof(buf), "%lld..%lld", (long long) o->min,
		    (long long) o->max);
	return buf;
}

// opt_set stores text v into the field of o; where names the source for the
// log line when v is not a value of the option's type.
static dre_err
opt_set(void *cfg, const dre_cfg_opt *o, const char *v, const char *where)
{
	char *field = (char *) cfg + o->offset;
	switch (o->type) {
	case DRE_CFG_STR: {
		if (o->choices != NULL && !one_of(o->choices, v)) {
			dre_error("config: %s: %s must be one of %s, got '%s'",
			    where, o->name, o->choices, v);
			return DRE_ECONFIG;
		}
		char *s = strdup(v);
		if (s == NULL)
			return DRE_ENOMEM;
		free(*(char **) field);
		*(char **) field = s;
		return DRE_OK;
	}
	case DRE_CFG_INT: {
		char *end;
		errno = 0;
		long long n = strtoll(v, &end, 10);
		if (*v == '\0' || *end != '\0' || errno == ERANGE) {
			dre_error(
			    "config: %s: %s expects an integer, got '%s'",
			    where, o->name, v);
			return DRE_ECONFIG;
		}
		if (o->min < o->max && (n < o->min || n > o->max)) {
			dre_error("config: %s: %s must be %s, got %lld", where,
			    o->name, range_text(o), n);
			return DRE_ECONFIG;
		}
		*(int64_t *) field = (int64_t) n;
		return DRE_OK;
	}
	case DRE_CFG_BOOL:
		if (parse_bool((bool *) field, v) != DRE_OK) {
			dre_error(
			    "config: %s: %s expects true/false, got '%s'",
			    where, o->name, v);
			return DRE_ECONFIG;
		}
		return DRE_OK;
	}
	return DRE_ECONFIG;
}

// apply routes name=value either to the table or, for kafka.*, to the list.
static dre_err
apply(void *cfg, const dre_cfg_opt *table, dre_kvlist *kafka, const char *name,
    size_t name_len, const char *v, const char *where)
{
	if (kafka != NULL && name_len > KAFKA_PREFIX_LEN
	    && memcmp(name, KAFKA_PREFIX, KAFKA_PREFIX_LEN) == 0) {
		char   key[256];
		size_t klen = name_len - KAFKA_PREFIX_LEN;
		if (klen >= sizeof(key)) {
			dre_error("config: %s: key too long", where);
			return DRE_ECONFIG;
		}
		memcpy(key, name + KAFKA_PREFIX_LEN, klen);
		key[klen] = '\0';
		dre_kvlist_set(kafka, key, v);
		return DRE_OK;
	}
	const dre_cfg_opt *o = opt_find(table, name, name_len);
	if (o == NULL) {
		dre_error("config: %s: unknown key '%.*s'", where,
		    (int) name_len, name);
		return DRE_ECONFIG;
	}
	return opt_set(cfg, o, v, where);
}

static char *
trim(char *s)
{
	while (isspace((unsigned char) *s))
		s++;
	size_t n = strlen(s);
	while (n > 0 && isspace((unsigned char) s[n - 1]))
		s[--n] = '\0';
	return s;
}

static dre_err
load_file(
    void *cfg, const dre_cfg_opt *table, dre_kvlist *kafka, const char *path)
{
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		dre_error("config: cannot open %s: %s", path, strerror(errno));
		return DRE_ECONFIG;
	}
	char    where[512];
	char   *line = NULL;
	size_t  cap = 0;
	ssize_t n;
	int     lineno = 0;
	dre_err rv = DRE_OK;
	while (rv == DRE_OK && (n = getline(&line, &cap, f)) >= 0) {
		lineno++;
		snprintf(where, sizeof(where), "%s:%d", path, lineno);
		char *s = trim(line);
		// Only whole-line comments: values (URLs, secrets) may hold
		// '#'.
		if (*s == '\0' || *s == '#')
			continue;
		char *eq = strchr(s, '=');
		if (eq == NULL) {
			dre_error(
			    "config: %s: expected 'name = value'", where);
			rv = DRE_ECONFIG;
			break;
		}
		*eq = '\0';
		char  *name = trim(s);
		char  *val = trim(eq + 1);
		size_t vl = strlen(val);
		if (vl >= 2 && val[0] == '"' && val[vl - 1] == '"') {
			val[vl - 1] = '\0';
			val++;
		}
		rv = apply(cfg, table, kafka, name, strlen(name), val, where);
	}
	free(line);
	fclose(f);
	return rv;
}

// env_name writes DRE_<NAME> for a key: '.' becomes '_', upper case.
static void
env_name(char *out, size_t cap, const char *name)
{
	size_t n = strlen(ENV_PREFIX);
	memcpy(out, ENV_PREFIX, n);
	for (; *name != '\0' && n + 1 < cap; name++) {
		char c = *name == '.' || *name == '-' ? '_' : *name;
		out[n++] = (char) toupper((unsigned char) c);
	}
	out[n] = '\0';
}

static dre_err
load_env(void *cfg, const dre_cfg_opt *table, dre_kvlist *kafka)
{
	char    var[256];
	dre_err rv;
	for (const dre_cfg_opt *o = table; o->name != NULL; o++) {
		env_name(var, sizeof(var), o->name);
		const char *v = getenv(var);
		if (v != NULL && (rv = opt_set(cfg, o, v, var)) != DRE_OK)
			return rv;
	}
	if (kafka == NULL)
		return DRE_OK;
	// DRE_KAFKA_BOOTSTRAP_SERVERS -> bootstrap.servers
	static const char kp[] = ENV_PREFIX "KAFKA_";
	for (char **e = environ; e != NULL && *e != NULL; e++) {
		if (strncmp(*e, kp, sizeof(kp) - 1) != 0)
			continue;
		const char *k = *e + sizeof(kp) - 1;
		const char *eq = strchr(k, '=');
		if (eq == NULL || eq == k || (size_t) (eq - k) >= sizeof(var))
			continue;
		size_t n = 0;
		for (; k < eq; k++)
			var[n++] = *k == '_'
			    ? '.'
			    : (char) tolower((unsigned char) *k);
		var[n] = '\0';
		dre_kvlist_set(kafka, var, eq + 1);
	}
	return DRE_OK;
}

static void
print_help(const char *prog, const dre_cfg_opt *table)
{
	static const char *const types[] = { "string", "int", "bool" };
	char                     var[256];
	printf("usage: %s [--config FILE] [-o name=value | --name=value | "
	       "--name value]...\n       %s --help | --version\n\n",
	    prog, prog);
	printf("Precedence: defaults < file (--config, DRE_CONFIG) < "
	       "environment (DRE_<NAME>) < command line.\n"
	       "kafka.<property> (env DRE_KAFKA_<PROPERTY>) is passed to "
	       "librdkafka.\n\noptions:\n");
	for (const dre_cfg_opt *o = table; o->name != NULL; o++) {
		env_name(var, sizeof(var), o->name);
		printf("  %-24s %-6s default '%s' (env %s)\n      %s", o->name,
		    types[o->type], o->def ? o->def : "", var,
		    o->help ? o->help : "");
		if (o->choices != NULL)
			printf(" (one of %s)", o->choices);
		else if (o->type == DRE_CFG_INT && o->min < o->max)
			printf(" (%s)", range_text(o));
		printf("\n");
	}
	fflush(stdout);
}

// config_arg recognises --config FILE / --config=FILE / -o config=FILE
// and returns the file name (advancing *i past a separate argument).
static const char *
config_arg(int argc, char **argv, int *i)
{
	const char *a = argv[*i];
	if (strcmp(a, "--config") == 0 || strcmp(a, "-c") == 0)
		return *i + 1 < argc ? argv[++*i] : "";
	if (strncmp(a, "--config=", 9) == 0)
		return a + 9;
	return NULL;
}

dre_err
dre_config_load(void *cfg, const dre_cfg_opt *table, dre_kvlist *kafka,
    int argc, char **argv)
{
	dre_err rv;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0
		    || strcmp(argv[i], "-h") == 0) {
			print_help(argv[0] ? argv[0] : "dre", table);
			exit(0);
		}
		if (strcmp(argv[i], "--version") == 0) {
			const char *prog = argv[0] ? argv[0] : "dre";
			const char *slash = strrchr(prog, '/');
			printf(
			    "%s %s\n", slash ? slash + 1 : prog, DRE_VERSION);
			fflush(stdout);
			exit(0);
		}
	}

	// Defaults first, so that every string field is owned afterwards.
	for (const dre_cfg_opt *o = table; o->name != NULL; o++) {
		char *field = (char *) cfg + o->offset;
		if (o->type == DRE_CFG_STR)
			*(char **) field = NULL;
		else if (o->type == DRE_CFG_INT)
			*(int64_t *) field = 0;
		else
			*(bool *) field = false;
		if ((o->def != NULL || o->type == DRE_CFG_STR)
		    && (rv = opt_set(cfg, o, o->def ? o->def : "", "default"))
		        != DRE_OK)
			return rv;
	}

	// The file named on the command line wins over DRE_CONFIG.
	const char *file = getenv(ENV_PREFIX "CONFIG");
	for (int i = 1; i < argc; i++) {
		const char *f = config_arg(argc, argv, &i);
		if (f == NULL)
			continue;
		if (*f == '\0') {
			dre_error("config: --config needs a file name");
			return DRE_ECONFIG;
		}
		file = f;
	}
	if (file != NULL && *file != '\0'
	    && (rv = load_file(cfg, table, kafka, file)) != DRE_OK)
		return rv;

	if ((rv = load_env(cfg, table, kafka)) != DRE_OK)
		return rv;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (config_arg(argc, argv, &i) != NULL)
			continue;
		const char *kv = NULL;
		if (strcmp(a, "-o") == 0) {
			if (i + 1 >= argc) {
				dre_error("config: -o needs name=value");
				return DRE_ECONFIG;
			}
			kv = argv[++i];
		} else if (strncmp(a, "-o", 2) == 0) {
			kv = a + 2;
		} else if (strncmp(a, "--", 2) == 0 && a[2] != '\0') {
			const char *name = a + 2;
			const char *eq = strchr(name, '=');
			if (eq != NULL) {
				kv = name;
			} else {
				// --name value; a bare --flag means true for
				// bools.
				const dre_cfg_opt *o
				    = opt_find(table, name, strlen(name));
				bool dummy;
				if (o != NULL && o->type == DRE_CFG_BOOL
				    && (i + 1 >= argc
				        || parse_bool(&dummy, argv[i + 1])
				            != DRE_OK)) {
					if ((rv = opt_set(cfg, o, "true", a))
					    != DRE_OK)
						return rv;
					continue;
				}
				if (i + 1 >= argc) {
					dre_error(
					    "config: %s needs a value", a);
					return DRE_ECONFIG;
				}
				rv = apply(cfg, table, kafka, name,
				    strlen(name), argv[++i], a);
				if (rv != DRE_OK)
					return rv;
				continue;
			}
		} else {
			dre_error("config: unexpected argument '%s'", a);
			return DRE_ECONFIG;
		}
		const char *eq = strchr(kv, '=');
		if (eq == NULL || eq == kv) {
			dre_error("config: expected name=value, got '%s'", kv);
			return DRE_ECONFIG;
		}
		rv = apply(cfg, table, kafka, kv, (size_t) (eq - kv), eq + 1,
		    "command line");
		if (rv != DRE_OK)
			return rv;
	}
	return DRE_OK;
}

static bool
is_secret(const char *name)
{
	size_t n = strlen(name);
	return strcmp(name, "auth.users") == 0 || strstr(name, "password")
	    || strstr(name, "secret") || strstr(name, "sasl.oauthbearer")
	    || (n > 4 && strcmp(name + n - 4, ".key") == 0);
}

void
dre_config_print(FILE *f, const void *cfg, const dre_cfg_opt *table,
    const dre_kvlist *kafka)
{
	for (const dre_cfg_opt *o = table; o->name != NULL; o++) {
		const char *field = (const char *) cfg + o->offset;
		if (o->type == DRE_CFG_INT) {
			fprintf(f, "%s = %" PRId64 "\n", o->name,
			    *(const int64_t *) field);
		} else if (o->type == DRE_CFG_BOOL) {
			fprintf(f, "%s = %s\n", o->name,
			    *(const bool *) field ? "true" : "false");
		} else {
			const char *v = *(char *const *) field;
			if (v == NULL)
				v = "";
			if (is_secret(o->name) && *v != '\0')
				v = "<set>";
			fprintf(f, "%s = %s\n", o->name, v);
		}
	}
	for (size_t i = 0; kafka != NULL && i < kafka->n; i++)
		fprintf(f, "%s%s = %s\n", KAFKA_PREFIX, kafka->keys[i],
		    is_secret(kafka->keys[i]) ? "<set>" : kafka->vals[i]);
}

bool
dre_config_nng_url_ok(const char *url)
{
	static const char *const hosted[]
	    = { "tcp://", "tls+tcp://", "tcp4://", "tcp6://" };
	if (url == NULL)
		return false;
	if (strncmp(url, "ipc://", 6) == 0)
		return url[6] != '\0';
	if (strncmp(url, "inproc://", 9) == 0)
		return url[9] != '\0';
	for (size_t i = 0; i < sizeof(hosted) / sizeof(hosted[0]); i++) {
		size_t pl = strlen(hosted[i]);
		if (strncmp(url, hosted[i], pl) != 0)
			continue;
		const char *host = url + pl;
		const char *colon = strrchr(host, ':');
		if (colon == NULL || colon == host)
			return false;
		char         *end;
		unsigned long port = strtoul(colon + 1, &end, 10);
		return colon[1] != '\0' && *end == '\0' && port >= 1
		    && port <= 65535
		    && strcspn(host, "/ ") > (size_t) (colon - host);
	}
	return false;
}

void
dre_config_free(void *cfg, const dre_cfg_opt *table, dre_kvlist *kafka)
{
	if (cfg != NULL && table != NULL) {
		for (const dre_cfg_opt *o = table; o->name != NULL; o++) {
			if (o->type != DRE_CFG_STR)
				continue;
			char **p = (char **) ((char *) cfg + o->offset);
			free(*p);
			*p = NULL;
		}
	}
	dre_kvlist_free(kafka);
}
