// fuzz.h -- what every fuzz target's oracle uses: CHECK aborts with the
// failed condition (libFuzzer keeps the input), fuzz_utf8 and
// fuzz_parse_json check text the code under test wrote.
#ifndef DRE_FUZZ_H
#define DRE_FUZZ_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dre/arena.h"
#include "dre/json.h"

#define CHECK(c)                                                              \
	do {                                                                  \
		if (!(c)) {                                                   \
			fprintf(stderr, "%s:%d: oracle: %s\n", __FILE__,      \
			    __LINE__, #c);                                    \
			abort();                                              \
		}                                                             \
	} while (0)

// fuzz_utf8 tells whether the NUL-terminated s is valid UTF-8.
static inline bool
fuzz_utf8(const char *s)
{
	return dre_utf8_valid(s, strlen(s), NULL);
}

// fuzz_parse_json parses text[0..len) or aborts, printing what it is.
static inline const dre_json *
fuzz_parse_json(dre_arena *a, const char *what, const char *text, size_t len)
{
	dre_json      *root = NULL;
	dre_json_error jerr = { 0, NULL };
	if (dre_json_parse(&root, a, text, len, DRE_JSON_MAX_DEPTH, &jerr)
	    != DRE_OK) {
		fprintf(stderr, "%s is not JSON (%s at %zu): %.*s\n", what,
		    jerr.msg, jerr.offset, (int) len, text);
		abort();
	}
	return root;
}

#endif
