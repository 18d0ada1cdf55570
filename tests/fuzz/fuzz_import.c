// fuzz_import.c -- libFuzzer target for the import jobs' file readers
// (common/src/importread.c): the first byte picks the format (JSON array,
// NDJSON, CSV), the rest is the uploaded file, read as a job's worker reads
// it. CSV columns named r... are RAW cells, l... LIST cells, the others
// strings.
//
// Oracle: the rows come with strictly increasing next offsets within the
// file; an NDJSON row is one line's text without its surrounding white
// space; a CSV row of a UTF-8 file is a JSON object our reader accepts; a
// malformed file's message says so ("malformed <format> at line L, column
// C: ...") in UTF-8; and reading again from any row's next offset, as a job
// does when it resumes after a restart, gives exactly the rows after it and
// the same ending.
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dre/arena.h"
#include "dre/buf.h"
#include "dre/importread.h"
#include "dre/json.h"

#include "fuzz.h"

#define MAX_ROWS 4096

typedef struct {
	dre_buf     text; // the rows, each NUL-terminated
	size_t      off[MAX_ROWS]; // each row's start in text
	size_t      len[MAX_ROWS];
	int64_t     next[MAX_ROWS];
	size_t      n;
	dre_ijob_rd end; // DRE_IJOB_RD_END or DRE_IJOB_RD_FAIL
	char        why[512];
} rows;

static dre_ijob_cell
cell_of(const char *column)
{
	return column[0] == 'r' ? DRE_IJOB_CELL_RAW
	    : column[0] == 'l'  ? DRE_IJOB_CELL_LIST
	                        : DRE_IJOB_CELL_STRING;
}

// read_all reads the file at path from offset into out.
static void
read_all(const char *path, dre_ijob_fmt fmt, int64_t offset, rows *out)
{
	dre_ijob_reader *p;
	dre_err          err = dre_ijob_reader_open(
	             &p, path, fmt, offset, fmt == DRE_IJOB_CSV ? cell_of : NULL);
	CHECK(err == DRE_OK);
	dre_buf_reset(&out->text);
	out->n = 0;
	out->why[0] = '\0';
	for (;;) {
		const char *row;
		size_t      len;
		int64_t     next;
		dre_ijob_rd o = dre_ijob_reader_next(p, &row, &len, &next);
		if (o != DRE_IJOB_RD_ROW) {
			out->end = o;
			if (o == DRE_IJOB_RD_FAIL)
				dre_ijob_reader_error(
				    p, out->why, sizeof out->why);
			break;
		}
		CHECK(out->n < MAX_ROWS);
		out->off[out->n] = out->text.len;
		out->len[out->n] = len;
		out->next[out->n] = next;
		dre_buf_append(&out->text, row, len);
		dre_buf_putc(&out->text, 0);
		CHECK(!out->text.oom);
		out->n++;
	}
	dre_ijob_reader_close(p);
}

static bool
is_ws(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static rows all, again;

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int  fd = -1;
	static char path[64];
	if (size < 1)
		return 0;
	if (fd < 0) { // the upload, in memory
		fd = memfd_create("fuzz_import", 0);
		CHECK(fd >= 0);
		snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	}
	dre_ijob_fmt   fmt = (dre_ijob_fmt) (data[0] % 3);
	const uint8_t *file = data + 1;
	size_t         flen = size - 1;
	CHECK(ftruncate(fd, 0) == 0);
	CHECK(pwrite(fd, file, flen, 0) == (ssize_t) flen);
	bool utf8 = dre_utf8_valid((const char *) file, flen, NULL);

	read_all(path, fmt, 0, &all);
	dre_arena *a = dre_arena_alloc(0);
	CHECK(a != NULL);
	int64_t prev = 0;
	for (size_t i = 0; i < all.n; i++) {
		const char *row = all.text.data + all.off[i];
		size_t      len = all.len[i];
		CHECK(all.next[i] > prev && all.next[i] <= (int64_t) flen);
		prev = all.next[i];
		if (fmt == DRE_IJOB_NDJSON) {
			CHECK(len > 0 && memchr(row, '\n', len) == NULL);
			CHECK(
			    !is_ws((uint8_t) row[0]) && !is_ws(row[len - 1]));
		} else if (fmt == DRE_IJOB_JSON) {
			CHECK(len > 0 && !is_ws((uint8_t) row[0]));
		} else if (utf8 && strlen(row) == len) {
			const dre_json *o
			    = fuzz_parse_json(a, "a CSV row", row, len);
			CHECK(o->type == DRE_JSON_OBJECT);
		}
	}
	dre_arena_free(a);
	if (all.end == DRE_IJOB_RD_FAIL) {
		static const char *const names[]
		    = { "malformed JSON at line ", "malformed NDJSON at line ",
			      "malformed CSV at line " };
		CHECK(strncmp(all.why, names[fmt], strlen(names[fmt])) == 0);
		CHECK(fuzz_utf8(all.why));
	}

	// Resuming after rows 0, the middle one and the last one.
	size_t from[3] = { 0, all.n / 2, all.n ? all.n - 1 : 0 };
	for (int k = 0; k < 3 && all.n > 0; k++) {
		size_t i = from[k];
		read_all(path, fmt, all.next[i], &again);
		CHECK(again.n == all.n - i - 1);
		for (size_t m = 0; m < again.n; m++) {
			size_t w = i + 1 + m;
			CHECK(again.len[m] == all.len[w]);
			CHECK(again.next[m] == all.next[w]);
			CHECK(memcmp(again.text.data + again.off[m],
			          all.text.data + all.off[w], all.len[w])
			    == 0);
		}
		CHECK(again.end == all.end);
		CHECK(strcmp(again.why, all.why) == 0);
	}
	return 0;
}
