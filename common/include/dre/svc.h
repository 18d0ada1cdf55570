// svc.h -- the frame every DRE process shares: config, logging, signals.
#ifndef DRE_SVC_H
#define DRE_SVC_H

#include <stdbool.h>

#include "dre/config.h"
#include "dre/err.h"

// dre_svc_init loads the config (see config.h), starts logging as `name`,
// blocks SIGINT/SIGTERM/SIGPIPE in every thread started afterwards and
// creates <data_dir>. Exits the process with status 2 on a config error.
void dre_svc_init(const char *name, void *cfg, const dre_cfg_opt *table,
    dre_common_cfg *common, int argc, char **argv);

// --check-config (anywhere on the command line) makes dre_svc_init load the
// configuration exactly as at start (defaults, file, environment, command
// line), validate it (the table's types, choices and ranges; every nng URL
// option: rpc.listen and *.url/*.urls; then the check set with
// dre_svc_on_check), print the effective configuration ("name = value",
// secrets hidden) and "<name>: configuration OK" to stdout and exit 0 -- or
// print the errors to stderr and exit 2. It opens no store, socket or file
// besides the config file (internal.key_file is not read; an internal.key
// given inline is checked), and creates no directory.
typedef bool (*dre_svc_check_fn)(const void *cfg);
// dre_svc_on_check registers the service's own validation (called before
// dre_svc_init; logs each error and returns false).
void dre_svc_on_check(dre_svc_check_fn fn);

// dre_svc_wait blocks until SIGINT or SIGTERM, or until timeout_ms passed
// (-1 = forever). Returns true when a stop signal arrived.
bool dre_svc_wait(int timeout_ms);
// dre_svc_stopping is true once a stop signal arrived.
bool dre_svc_stopping(void);
// dre_svc_stop requests a stop from inside the process (as SIGTERM would)
// and wakes dre_svc_wait.
void dre_svc_stop(void);

// dre_svc_path joins <data_dir>/<sub> into a malloc'd string (caller frees)
// and creates the directory. NULL (logged) when it cannot be created.
char *dre_svc_path(const dre_common_cfg *common, const char *sub);

// dre_thread_name names the calling thread as top -H, perf, gdb and
// /proc/<pid>/task/*/comm show it: "<prefix>:<detail>" (detail may be NULL),
// cut to the kernel's 15 bytes.
void dre_thread_name(const char *prefix, const char *detail);

#endif
