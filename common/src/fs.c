// fs.c -- the file-system helpers of common/: directories made and removed.
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dre/fs.h"

int
dre_mkdirs(const char *path)
{
	char *p = strdup(path);
	if (p == NULL)
		return -1;
	size_t n = strlen(p);
	while (n > 1 && p[n - 1] == '/')
		p[--n] = '\0';
	for (char *s = p + 1; *s != '\0'; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0755) != 0 && errno != EEXIST) {
			free(p);
			return -1;
		}
		*s = '/';
	}
	int rv = 0;
	if (mkdir(p, 0755) != 0 && errno != EEXIST)
		rv = -1;
	struct stat st;
	if (rv == 0 && (stat(p, &st) != 0 || !S_ISDIR(st.st_mode))) {
		errno = ENOTDIR;
		rv = -1;
	}
	free(p);
	return rv;
}

static int
remove_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void) st;
	(void) flag;
	(void) f;
	return remove(path) != 0 && errno != ENOENT ? -1 : 0;
}

int
dre_rmtree(const char *path)
{
	if (nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS) != 0
	    && errno != ENOENT)
		return -1;
	return 0;
}
