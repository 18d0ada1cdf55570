// svc.c -- the frame every DRE process shares: config, logging, signals.
#define _GNU_SOURCE // asprintf, pthread_setname_np
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dre/bus.h"
#include "dre/fs.h"
#include "dre/log.h"
#include "dre/metrics.h"
#include "dre/registry.h"
#include "dre/rpc.h"
#include "dre/svc.h"

static atomic_bool      svc_stop;
static dre_svc_check_fn svc_check;
static atomic_bool      svc_signals_blocked;

// load_internal_key installs the key of internal.key, else of
// internal.key_file (default <data_dir>/internal.key). A missing default
// file is no error here: a process that opens an rpc socket then fails to
// start with a message naming the settings. Returns false (logged) on a
// key that is given but unusable.
static bool
load_internal_key(const dre_common_cfg *common)
{
	uint8_t     key[DRE_RPC_KEY_LEN];
	char        text[256];
	const char *file = common->internal_key_file;
	bool        by_default = file == NULL || *file == '\0';
	char       *path = NULL;
	bool        ok = false;

	if (common->internal_key != NULL && *common->internal_key != '\0') {
		if (dre_rpc_key_parse(common->internal_key, key) != DRE_OK) {
			dre_error("internal.key: not 64 hex digits");
			return false;
		}
		goto set;
	}
	if (by_default) {
		const char *dir = common->data_dir && *common->data_dir
		    ? common->data_dir
		    : ".";
		if (asprintf(&path, "%s/internal.key", dir) < 0)
			return false;
		file = path;
	}
	FILE *f = fopen(file, "r");
	if (f == NULL) {
		int err = errno;
		if (!(err == ENOENT && by_default))
			dre_error(
			    "internal key file %s: %s", file, strerror(err));
		free(path);
		return err == ENOENT && by_default;
	}
	size_t n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	if (dre_rpc_key_parse(text, key) != DRE_OK) {
		dre_error("internal key file %s: not 64 hex digits", file);
		free(path);
		return false;
	}
	free(path);
set:
	ok = dre_rpc_key_set(key, sizeof(key)) == DRE_OK;
	memset(key, 0, sizeof(key));
	if (!ok)
		dre_error("cannot install the internal key");
	return ok;
}

static void
stop_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
}

void
dre_svc_on_check(dre_svc_check_fn fn)
{
	svc_check = fn;
}

// take_flag removes every flag from argv (argc updated); true if present.
static bool
take_flag(int *argc, char **argv, const char *flag)
{
	bool found = false;
	int  n = 1;
	for (int i = 1; i < *argc; i++) {
		if (strcmp(argv[i], flag) == 0)
			found = true;
		else
			argv[n++] = argv[i];
	}
	*argc = n;
	return found;
}

// urls_ok checks every nng URL option of the table: rpc.listen (may be
// empty: the gateway has none) and each comma-separated *.url/*.urls value.
static bool
urls_ok(const void *cfg, const dre_cfg_opt *table)
{
	bool ok = true;
	for (const dre_cfg_opt *o = table; o->name != NULL; o++) {
		size_t nl = strlen(o->name);
		bool   listen = strcmp(o->name, "rpc.listen") == 0;
		bool   dial = (nl > 4 && strcmp(o->name + nl - 4, ".url") == 0)
		    || (nl > 5 && strcmp(o->name + nl - 5, ".urls") == 0);
		if (o->type != DRE_CFG_STR || (!listen && !dial))
			continue;
		const char *v
		    = *(char *const *) ((const char *) cfg + o->offset);
		if (v == NULL || *v == '\0') {
			if (dial) {
				dre_error("%s: empty", o->name);
				ok = false;
			}
			continue;
		}
		for (const char *p = v; *p != '\0';) {
			size_t l = strcspn(p, ",");
			char   one[512];
			if (l == 0 || l >= sizeof(one)) {
				dre_error("%s: bad list '%s'", o->name, v);
				ok = false;
				break;
			}
			memcpy(one, p, l);
			one[l] = '\0';
			if (!dre_config_nng_url_ok(one)) {
				dre_error("%s: '%s' is not an nng URL "
				          "(tcp://host:port, ipc://path)",
				    o->name, one);
				ok = false;
			}
			p += l + (p[l] == ',');
		}
	}
	return ok;
}

// malloc_tune keeps freed heap memory for reuse instead of handing it back
// to the kernel at every free. With glibc's defaults a request's buffers
// (an evaluate's 18 KB answer, its protobuf copies) grow a thread arena's
// top, are freed, and the top is trimmed (madvise) -- only to be faulted in
// again, page by page, by the next request: a tenth of the gateway's CPU
// under load. A thread arena keeps up to 16 MiB free at its top, grows by
// 1 MiB at a time, and only blocks of 4 MiB or more are mmap'd of their own
// (fixed: glibc's sliding threshold no longer moves). A process that loads
// much and then frees it gives it back with malloc_trim (the evaluator after
// a snapshot). An operator's own GLIBC_TUNABLES for malloc win.
static void
malloc_tune(void)
{
	const char *t = getenv("GLIBC_TUNABLES");
	if (t != NULL && strstr(t, "glibc.malloc.") != NULL)
		return;
	mallopt(M_MMAP_THRESHOLD, 4 << 20);
	mallopt(M_TRIM_THRESHOLD, 16 << 20);
	mallopt(M_TOP_PAD, 1 << 20);
}

// sched_batch puts the calling thread, and so every thread it creates from
// now on (they inherit its policy), under SCHED_BATCH. A request crosses
// several threads (the HTTP worker, nng's task threads, the RPC handler):
// under the default policy each wake-up preempts the thread that woke the
// next one, which then runs again to finish -- two context switches per
// step where one does when the processes share cores. Measured on one core
// (docs/performance.md): half the context switches per sequential
// evaluate. Needs no privilege (nice values still apply).
static void
sched_batch(void)
{
	struct sched_param p = { 0 };
	if (sched_setscheduler(0, SCHED_BATCH, &p) != 0)
		dre_warn(
		    "sched.batch: %s; the default scheduling policy stays",
		    strerror(errno));
}

void
dre_svc_init(const char *name, void *cfg, const dre_cfg_opt *table,
    dre_common_cfg *common, int argc, char **argv)
{
	malloc_tune();
	bool check = take_flag(&argc, argv, "--check-config");
	// Log under the service's name already while the config loads.
	dre_log_init(name, DRE_LOG_INFO);
	if (dre_config_load(
	        cfg, table, common ? &common->kafka : NULL, argc, argv)
	    != DRE_OK) {
		dre_error("invalid configuration; see %s --help", name);
		exit(2);
	}
	bool confluent = common != NULL && common->events_format != NULL
	    && strcmp(common->events_format, "confluent") == 0;
	if (confluent
	    && (common->registry_url == NULL
	        || (strncmp(common->registry_url, "http://", 7) != 0
	            && strncmp(common->registry_url, "https://", 8) != 0))) {
		dre_error("events.format=confluent needs events.registry_url "
		          "(http:// or https://)");
		exit(2);
	}
	if (check) {
		bool    ok = urls_ok(cfg, table);
		uint8_t key[DRE_RPC_KEY_LEN];
		// The key's syntax only: a key file is a secret the checking
		// machine need not have (no file but the config is read).
		if (common != NULL && common->internal_key != NULL
		    && *common->internal_key != '\0'
		    && dre_rpc_key_parse(common->internal_key, key)
		        != DRE_OK) {
			dre_error("internal.key: not 64 hex digits");
			ok = false;
		}
		if (svc_check != NULL && !svc_check(cfg))
			ok = false;
		if (!ok) {
			dre_error(
			    "invalid configuration; see %s --help", name);
			exit(2);
		}
		dre_config_print(
		    stdout, cfg, table, common ? &common->kafka : NULL);
		printf("%s: configuration OK\n", name);
		fflush(stdout);
		dre_config_free(cfg, table, common ? &common->kafka : NULL);
		exit(0);
	}
	if (common != NULL) {
		dre_log_init(name, dre_log_level_parse(common->log_level));
		dre_log_format_set(common->log_format);
		dre_bus_set_fetch_wait_ms((int) common->fetch_wait_ms);
		// Before any thread exists.
		if (common->sched_batch)
			sched_batch();
	}
	dre_metrics_init(name);
	// Before any producer exists: every event is then written with the
	// registry's ids. A registry that cannot be reached stops the start
	// (the supervisor retries), rather than writing another format.
	if (confluent
	    && dre_registry_register_all(common->registry_url, 10000)
	        != DRE_OK) {
		dre_error("cannot register the event schemas with %s",
		    common->registry_url);
		exit(1);
	}

	// Blocked here, before any thread exists, so every thread inherits
	// the mask and only dre_svc_wait's sigtimedwait receives them.
	sigset_t set;
	stop_signals(&set);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	atomic_store(&svc_signals_blocked, true);
	// A peer closing a socket must not kill the process.
	signal(SIGPIPE, SIG_IGN);

	if (common != NULL && common->data_dir != NULL
	    && *common->data_dir != '\0'
	    && dre_mkdirs(common->data_dir) != 0) {
		dre_error("cannot create data_dir %s: %s", common->data_dir,
		    strerror(errno));
		exit(2);
	}
	if (common != NULL && !load_internal_key(common))
		exit(2);
}

bool
dre_svc_wait(int timeout_ms)
{
	if (atomic_load(&svc_stop))
		return true;
	sigset_t set;
	stop_signals(&set);
	int64_t         left = timeout_ms;
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		int sig;
		if (timeout_ms < 0) {
			sig = sigwaitinfo(&set, NULL);
		} else {
			struct timespec ts
			    = { left / 1000, (left % 1000) * 1000000 };
			sig = sigtimedwait(&set, NULL, &ts);
		}
		if (sig == SIGINT || sig == SIGTERM) {
			dre_info("received signal %d, stopping", sig);
			atomic_store(&svc_stop, true);
			return true;
		}
		if (atomic_load(&svc_stop))
			return true;
		if (sig < 0 && errno == EAGAIN)
			return false;
		if (timeout_ms >= 0) {
			// EINTR: wait only for what is left of the timeout.
			struct timespec t1;
			clock_gettime(CLOCK_MONOTONIC, &t1);
			int64_t spent = (t1.tv_sec - t0.tv_sec) * 1000
			    + (t1.tv_nsec - t0.tv_nsec) / 1000000;
			left = timeout_ms - spent;
			if (left <= 0)
				return false;
		}
	}
}

bool
dre_svc_stopping(void)
{
	return atomic_load(&svc_stop);
}

void
dre_svc_stop(void)
{
	atomic_store(&svc_stop, true);
	// Wake a thread blocked in dre_svc_wait; without the mask of
	// dre_svc_init the signal would kill the process instead.
	if (atomic_load(&svc_signals_blocked))
		kill(getpid(), SIGTERM);
}

char *
dre_svc_path(const dre_common_cfg *common, const char *sub)
{
	const char *dir = common && common->data_dir && *common->data_dir
	    ? common->data_dir
	    : ".";
	size_t      dl = strlen(dir), sl = strlen(sub);
	char       *p = malloc(dl + sl + 2);
	if (p == NULL)
		return NULL;
	memcpy(p, dir, dl);
	size_t n = dl;
	if (sl > 0) {
		if (n > 0 && p[n - 1] != '/')
			p[n++] = '/';
		memcpy(p + n, sub, sl);
		n += sl;
	}
	p[n] = '\0';
	if (dre_mkdirs(p) != 0) {
		dre_error("cannot create %s: %s", p, strerror(errno));
		free(p);
		return NULL;
	}
	return p;
}

void
dre_thread_name(const char *prefix, const char *detail)
{
	char name[16]; // the kernel keeps 15 bytes and the NUL
	snprintf(name, sizeof(name), "%s%s%s", prefix, detail ? ":" : "",
	    detail ? detail : "");
	pthread_setname_np(pthread_self(), name);
}
