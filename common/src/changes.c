// changes.c -- the change list of a master-data write (see changes.h).
#include "dre/changes.h"

#include <stdlib.h>
#include <string.h>

void
dre_changes_add(dre_buf *b, const char *kind, const char *key, int64_t version)
{
	dre_buf_printf(b, "%s\t%s\t%lld\n", kind, key, (long long) version);
}

bool
dre_changes_next(const uint8_t *list, size_t len, size_t *pos, char *line,
    size_t cap, const char **kind, const char **key, int64_t *version)
{
	size_t i = *pos;
	while (i < len) {
		size_t n = 0;
		bool   fits = true;
		while (i < len && list[i] != '\n') {
			if (n + 1 < cap)
				line[n++] = (char) list[i];
			else
				fits = false;
			i++;
		}
		i++; // the newline
		line[n] = '\0';
		char *k = strchr(line, '\t');
		char *v = k ? strchr(k + 1, '\t') : NULL;
		if (!fits || v == NULL)
			continue;
		*k++ = '\0';
		*v++ = '\0';
		*kind = line;
		*key = k;
		*version = strtoll(v, NULL, 10);
		*pos = i;
		return true;
	}
	*pos = len;
	return false;
}
