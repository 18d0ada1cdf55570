// console.c -- the browser console (issue 18): GET /console and
// /console/<file> serve the static files of console.dir to anyone (the
// application calls the public API with the user's own credentials), and
// GET /api/v1/Me tells a signed-in caller who it is and its roles, so the
// console shows only what the role may do (the routes still decide).
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dre/jsonw.h"
#include "dre/log.h"
#include "gw.h"

#define CONSOLE_FILE_MAX (4 << 20)

static const struct {
	const char *ext;
	const char *type;
} media[] = {
	{ ".html", "text/html; charset=utf-8" },
	{ ".js", "text/javascript; charset=utf-8" },
	{ ".css", "text/css; charset=utf-8" },
	{ ".svg", "image/svg+xml" },
	{ ".png", "image/png" },
	{ NULL, NULL },
};

dre_err
gw_console_open(gw *g)
{
	char        exe[PATH_MAX];
	const char *dir = g->cfg->console_dir;
	ssize_t     n;

	if (dir != NULL && dir[0] != '\0') {
		snprintf(g->console_dir, sizeof(g->console_dir), "%s", dir);
		return DRE_OK;
	}
	// The default: share/dre/console beside the bin/ holding this
	// program, in the install layout and in the build tree alike.
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0) {
		dre_error("console.dir: cannot find this program: %s",
		    strerror(errno));
		return DRE_EIO;
	}
	exe[n] = '\0';
	char *slash = strrchr(exe, '/');
	if (slash != NULL)
		*slash = '\0';
	if (snprintf(g->console_dir, sizeof(g->console_dir),
	        "%s/../share/dre/console", exe)
	    >= (int) sizeof(g->console_dir)) {
		dre_error("console.dir: path too long");
		return DRE_EINVAL;
	}
	return DRE_OK;
}

// media_of returns the Content-Type of a file name the console may serve:
// letters, digits, '-', '_' and dots, not starting with a dot, with a known
// extension. NULL otherwise.
static const char *
media_of(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > 100 || name[0] == '.')
		return NULL;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		        || (c >= '0' && c <= '9') || c == '-' || c == '_'
		        || c == '.'))
			return NULL;
	}
	for (int i = 0; media[i].ext != NULL; i++) {
		size_t e = strlen(media[i].ext);
		if (n > e && strcmp(name + n - e, media[i].ext) == 0)
			return media[i].type;
	}
	return NULL;
}

void
gw_console(gw_job *j)
{
	const char *name = j->id != NULL ? j->id : "index.html";
	const char *type = media_of(name);
	char        path[PATH_MAX + 128];
	struct stat st;
	int         fd = -1;

	if (type == NULL)
		goto not_found;
	snprintf(path, sizeof(path), "%s/%s", j->g->console_dir, name);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)
	    || st.st_size > CONSOLE_FILE_MAX)
		goto not_found;
	dre_buf_reset(&j->out);
	dre_buf_reserve(&j->out, (size_t) st.st_size + 1);
	if (j->out.oom) {
		close(fd);
		gw_job_oom(j);
		return;
	}
	for (;;) {
		char    chunk[16384];
		ssize_t got = read(fd, chunk, sizeof(chunk));
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			dre_warn(
			    "console: reading %s: %s", path, strerror(errno));
			goto not_found;
		}
		if (got == 0)
			break;
		dre_buf_append(&j->out, chunk, (size_t) got);
	}
	close(fd);
	gw_job_header_add(j, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	gw_job_header_add(j, "X-Content-Type-Options", "nosniff");
	gw_job_header_add(j, "Content-Security-Policy",
	    "default-src 'self'; img-src 'self' data:; "
	    "frame-ancestors 'none'");
	gw_job_respond(j, 200, j->out.data, j->out.len, type);
	return;
not_found:
	if (fd >= 0)
		close(fd);
	gw_job_error(j, 404, "NOT_FOUND", NULL, "no resource at /console/%s",
	    j->id != NULL ? j->id : "");
}

void
gw_me(gw_job *j)
{
	dre_jsonw w;

	dre_buf_reset(&j->out);
	dre_jsonw_init(&w, &j->out);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kstr(&w, "principal", j->who.principal);
	dre_jsonw_kstr(&w, "tenant", j->who.tenant);
	dre_jsonw_key(&w, "roles");
	dre_jsonw_arr_begin(&w);
	for (unsigned i = 0; i < 32; i++) {
		const char *r = dre_role_name(j->who.roles & (1u << i));
		if (r != NULL)
			dre_jsonw_str(&w, r);
	}
	dre_jsonw_arr_end(&w);
	dre_jsonw_obj_end(&w);
	gw_job_header_add(j, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	gw_job_respond(j, 200, j->out.data, j->out.len, GW_JSON_CT);
}
