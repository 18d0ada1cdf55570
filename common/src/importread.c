// importread.c -- an import job's file read row by row (dre/importread.h):
// a window on the file read 256 KiB at a time, a JSON array framed by
// json-c's incremental tokener, NDJSON line by line, CSV through libcsv.
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <csv.h>
#include <json-c/json_tokener.h>
#include <json-c/json_object.h>

#include "dre/arena.h"
#include "dre/buf.h"
#include "dre/importread.h"
#include "dre/json.h"
#include "dre/jsonw.h"

#define MAX_ROW    DRE_IJOB_MAX_ROW
#define READ_CHUNK (256u << 10)

// A window on the file: bytes [base + 0, base + len) are in buf; pos is
// the next byte to look at (relative to buf).
typedef struct {
	int     fd;
	char   *buf;
	size_t  cap, len, pos;
	int64_t base;
	bool    eof;
} win;

// win_fill keeps bytes from keep on (moved to the front) and reads more;
// false on a read error.
static bool
win_fill(win *w, size_t keep)
{
	if (keep > 0) {
		memmove(w->buf, w->buf + keep, w->len - keep);
		w->len -= keep;
		w->pos -= keep;
		w->base += (int64_t) keep;
	}
	if (w->cap - w->len < READ_CHUNK) {
		size_t ncap = w->len + READ_CHUNK;
		if (ncap > MAX_ROW + 2 * READ_CHUNK)
			return true; // full: the caller sees no progress
		char *nb = realloc(w->buf, ncap);
		if (nb == NULL)
			return false;
		w->buf = nb;
		w->cap = ncap;
	}
	ssize_t n = read(w->fd, w->buf + w->len, w->cap - w->len);
	if (n < 0)
		return false;
	if (n == 0)
		w->eof = true;
	w->len += (size_t) n;
	return true;
}

typedef dre_ijob_rd rd_out;
#define RD_ROW  DRE_IJOB_RD_ROW
#define RD_END  DRE_IJOB_RD_END
#define RD_FAIL DRE_IJOB_RD_FAIL

typedef struct dre_ijob_reader reader;

struct dre_ijob_reader {
	char        *path;
	win          w;
	dre_ijob_fmt fmt;
	// JSON array framing
	int state; // 0 '[', 1 first, 2 ',' or ']', 3 after ','
	struct json_tokener *tok;
	// CSV
	struct csv_parser csv;
	bool              csv_init;
	char            **hdr;
	size_t            nhdr;
	bool              have_hdr;
	dre_buf           fields; // the current record's fields, NUL-separated
	size_t            nfields;
	bool              rec_done;
	dre_buf           nulls; // per field: 1 when the cell is empty
	const char       *dup; // a column the header names twice
	dre_ijob_cell (*csv_cell)(const char *column);
	// the row found
	dre_buf row;
	int64_t next; // file offset after the row
	// a malformed file
	int64_t err_off;
	char    err[256];
};

static rd_out
rd_fail(reader *p, int64_t off, const char *what)
{
	p->err_off = off;
	snprintf(p->err, sizeof p->err, "%s", what);
	return RD_FAIL;
}

static bool
is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

// skip_ws moves past white space, reading more as needed; false at the
// end of the file (or a read error: eof is then set too).
static bool
skip_ws(reader *p)
{
	for (;;) {
		while (p->w.pos < p->w.len && is_ws(p->w.buf[p->w.pos]))
			p->w.pos++;
		if (p->w.pos < p->w.len)
			return true;
		if (p->w.eof || !win_fill(&p->w, p->w.pos))
			return false;
		if (p->w.eof && p->w.pos >= p->w.len)
			return false;
	}
}

// find_eol finds the first '\n' of s[0..n), or with cr the first '\n' or
// '\r' (CSV: libcsv ends a record at either, so a file with bare CR line
// ends is read record by record, not as one line).
static char *
find_eol(char *s, size_t n, bool cr)
{
	char *lf = memchr(s, '\n', n);
	if (!cr)
		return lf;
	char *r = memchr(s, '\r', lf != NULL ? (size_t) (lf - s) : n);
	return r != NULL ? r : lf;
}

// next_line finds the line at pos, reading more as needed: *end is the
// index of its end of line (*nl set; '\n', or with cr also '\r') or of
// the end of the file (*nl clear). RD_ROW when there is one, RD_END at the
// end of the file, RD_FAIL.
static rd_out
next_line(reader *p, size_t *end, bool *nl, bool cr)
{
	for (;;) {
		char *c = p->w.len > p->w.pos
		    ? find_eol(p->w.buf + p->w.pos, p->w.len - p->w.pos, cr)
		    : NULL;
		if (c != NULL) {
			*end = (size_t) (c - p->w.buf);
			*nl = true;
			return RD_ROW;
		}
		if (p->w.len - p->w.pos > MAX_ROW)
			return rd_fail(p, p->w.base + (int64_t) p->w.pos,
			    "a line longer than 1 MiB");
		if (p->w.eof) {
			*end = p->w.len;
			*nl = false;
			return RD_ROW;
		}
		if (!win_fill(&p->w, p->w.pos))
			return rd_fail(p, p->w.base, "read error");
	}
}

static rd_out
next_ndjson(reader *p)
{
	for (;;) {
		size_t end;
		bool   nl;
		rd_out o = next_line(p, &end, &nl, false);
		if (o != RD_ROW)
			return o;
		if (!nl && p->w.pos >= p->w.len)
			return RD_END;
		size_t s = p->w.pos, e = end;
		p->w.pos = nl ? end + 1 : end;
		while (s < e && is_ws(p->w.buf[s]))
			s++;
		while (e > s && is_ws(p->w.buf[e - 1]))
			e--;
		if (s == e)
			continue; // blank line
		dre_buf_reset(&p->row);
		dre_buf_append(&p->row, p->w.buf + s, e - s);
		p->next = p->w.base + (int64_t) p->w.pos;
		return RD_ROW;
	}
}

static rd_out
next_json(reader *p)
{
	for (;;) {
		if (!skip_ws(p)) {
			if (p->state == 0)
				return rd_fail(p,
				    p->w.base + (int64_t) p->w.pos,
				    "expected '[': the file is empty");
			if (p->state == 4)
				return RD_END;
			return rd_fail(p, p->w.base + (int64_t) p->w.pos,
			    "unexpected end of file: the array is not closed");
		}
		char    c = p->w.buf[p->w.pos];
		int64_t at = p->w.base + (int64_t) p->w.pos;
		switch (p->state) {
		case 0:
			if (c != '[')
				return rd_fail(p, at,
				    "expected '[': a JSON array of rows");
			p->w.pos++;
			p->state = 1;
			continue;
		case 2:
			if (c == ',') {
				p->w.pos++;
				p->state = 3;
			} else if (c == ']') {
				p->w.pos++;
				p->state = 4;
			} else {
				return rd_fail(
				    p, at, "expected ',' or ']' after a row");
			}
			continue;
		case 4:
			return rd_fail(
			    p, at, "unexpected data after the array");
		default:
			break;
		}
		if (p->state == 1 && c == ']') {
			p->w.pos++;
			p->state = 4;
			continue;
		}
		// One element: json-c's tokener decides where it ends.
		size_t start = p->w.pos, fed = p->w.pos;
		json_tokener_reset(p->tok);
		for (;;) {
			json_object *o = json_tokener_parse_ex(
			    p->tok, p->w.buf + fed, (int) (p->w.len - fed));
			enum json_tokener_error je
			    = json_tokener_get_error(p->tok);
			if (o != NULL || je == json_tokener_success) {
				size_t end
				    = fed + json_tokener_get_parse_end(p->tok);
				json_object_put(o);
				dre_buf_reset(&p->row);
				dre_buf_append(
				    &p->row, p->w.buf + start, end - start);
				p->w.pos = end;
				p->next = p->w.base + (int64_t) end;
				p->state = 2;
				return RD_ROW;
			}
			if (je != json_tokener_continue)
				return rd_fail(p,
				    p->w.base + (int64_t) fed
				        + (int64_t) json_tokener_get_parse_end(
				            p->tok),
				    json_tokener_error_desc(je));
			if (p->w.eof)
				return rd_fail(p,
				    p->w.base + (int64_t) p->w.len,
				    "unexpected end of file inside a row");
			if (p->w.len - start > MAX_ROW)
				return rd_fail(p, p->w.base + (int64_t) start,
				    "a row larger than 1 MiB");
			size_t keep = start;
			fed = p->w.len - keep;
			start = 0;
			if (!win_fill(&p->w, keep))
				return rd_fail(p, p->w.base, "read error");
		}
	}
}

// ---- CSV (libcsv): a record's fields, then a JSON object of them

static void
csv_field(void *s, size_t len, void *arg)
{
	reader *p = arg;
	dre_buf_putc(&p->nulls, s == NULL);
	dre_buf_append(&p->fields, s ? s : "", s ? len : 0);
	dre_buf_putc(&p->fields, 0);
	p->nfields++;
}

static void
csv_record(int c, void *arg)
{
	reader *p = arg;
	(void) c;
	p->rec_done = true;
}

// cell_json writes one CSV cell as the column's kind of JSON value.
static void
cell_json(dre_jsonw *w, dre_ijob_cell kind, const char *v)
{
	size_t n = strlen(v);
	if (kind == DRE_IJOB_CELL_RAW) {
		dre_arena *a = dre_arena_alloc(0);
		dre_json  *o = NULL;
		bool       ok = a != NULL
		    && dre_json_parse(&o, a, v, n, DRE_JSON_MAX_DEPTH, NULL)
		        == DRE_OK;
		dre_arena_free(a);
		if (ok) {
			dre_jsonw_raw(w, v, n);
			return;
		}
	} else if (kind == DRE_IJOB_CELL_LIST) {
		dre_jsonw_arr_begin(w);
		const char *s = v;
		while (*s) {
			const char *e = strchr(s, ';');
			size_t      l = e ? (size_t) (e - s) : strlen(s);
			if (l > 0)
				dre_jsonw_strn(w, s, l);
			s += l + (e ? 1 : 0);
		}
		dre_jsonw_arr_end(w);
		return;
	}
	dre_jsonw_str(w, v);
}

typedef struct {
	const char *name;
	size_t      at;
} hdr_col;

static int
hdr_col_cmp(const void *a, const void *b)
{
	const hdr_col *x = a, *y = b;
	int            c = strcmp(x->name, y->name);
	return c != 0 ? c : (x->at > y->at) - (x->at < y->at);
}

// dup_column returns the first column (in the header's order) whose name
// an earlier column has, or NULL; columns without a name do not count. By
// sorting: a header line of up to 1 MiB has hundreds of thousands of
// columns.
static const char *
dup_column(char **hdr, size_t n)
{
	hdr_col *c = malloc((n ? n : 1) * sizeof *c);
	size_t   m = 0, best = SIZE_MAX;
	if (c == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (hdr[i] != NULL && hdr[i][0] != '\0')
			c[m++] = (hdr_col) { hdr[i], i };
	qsort(c, m, sizeof *c, hdr_col_cmp);
	for (size_t i = 1; i < m; i++)
		if (strcmp(c[i - 1].name, c[i].name) == 0 && c[i].at < best)
			best = c[i].at;
	free(c);
	return best != SIZE_MAX ? hdr[best] : NULL;
}

// csv_take turns the record read into the header or a row; true for a row.
static bool
csv_take(reader *p)
{
	const char *f = p->fields.data ? p->fields.data : "";
	size_t      n = p->nfields;
	if (!p->have_hdr) {
		p->hdr = calloc(n ? n : 1, sizeof *p->hdr);
		for (size_t i = 0; p->hdr && i < n; i++) {
			p->hdr[i] = strdup(f);
			f += strlen(f) + 1;
		}
		p->nhdr = p->hdr ? n : 0;
		p->have_hdr = true;
		// A column named twice would make every row an object with
		// that member twice.
		p->dup = dup_column(p->hdr, p->nhdr);
		return false;
	}
	dre_buf_reset(&p->row);
	dre_jsonw w;
	dre_jsonw_init(&w, &p->row);
	dre_jsonw_obj_begin(&w);
	for (size_t i = 0; i < n; i++) {
		const char *v = f;
		f += strlen(f) + 1;
		// An empty cell: the member is absent. A column without a
		// name (trailing commas) names no member: ignored.
		if (i >= p->nhdr || i >= p->nulls.len || p->nulls.data[i]
		    || p->hdr[i] == NULL || p->hdr[i][0] == '\0')
			continue;
		dre_ijob_cell kind = p->csv_cell ? p->csv_cell(p->hdr[i])
		                                 : DRE_IJOB_CELL_STRING;
		dre_jsonw_key_escn(&w, p->hdr[i], strlen(p->hdr[i]));
		cell_json(&w, kind, v);
	}
	dre_jsonw_obj_end(&w);
	return true;
}

static rd_out
next_csv(reader *p)
{
	for (;;) {
		size_t end;
		bool   found;
		rd_out o = next_line(p, &end, &found, true);
		if (o != RD_ROW)
			return o;
		char *nl = found ? p->w.buf + end : NULL;
		if (found)
			end++;
		size_t s = p->w.pos, len = end - s;
		if (len > 0) {
			size_t used = csv_parse(&p->csv, p->w.buf + s, len,
			    csv_field, csv_record, p);
			if (used != len)
				return rd_fail(p,
				    p->w.base + (int64_t) (s + used),
				    csv_strerror(csv_error(&p->csv)));
		}
		p->w.pos = end;
		if (nl == NULL) { // the end of the file
			if (csv_fini(&p->csv, csv_field, csv_record, p) != 0)
				return rd_fail(p, p->w.base + (int64_t) end,
				    "unterminated quoted field");
			if (!p->rec_done)
				return RD_END;
		}
		if (!p->rec_done)
			continue; // a quoted field goes on on the next line
		p->rec_done = false;
		bool row = csv_take(p);
		if (p->dup != NULL) { // the header: the file's first record
			char why[160];
			if (dre_utf8_valid(p->dup, strlen(p->dup), NULL))
				snprintf(why, sizeof why,
				    "the header names the column '%.*s' twice",
				    DRE_UTF8_CUT(p->dup, 100));
			else
				snprintf(why, sizeof why,
				    "the header names a column twice (its "
				    "name is not UTF-8)");
			return rd_fail(p, 0, why);
		}
		// (before the reset, which clears the flags)
		bool oom = p->fields.oom || p->nulls.oom || p->row.oom;
		dre_buf_reset(&p->fields);
		p->nfields = 0;
		dre_buf_reset(&p->nulls);
		if (oom)
			return rd_fail(p, p->w.base, "out of memory");
		if (row) {
			p->next = p->w.base + (int64_t) p->w.pos;
			return RD_ROW;
		}
		if (nl == NULL)
			return RD_END;
	}
}

dre_ijob_rd
dre_ijob_reader_next(
    dre_ijob_reader *p, const char **row, size_t *len, int64_t *next)
{
	rd_out o = p->fmt == DRE_IJOB_NDJSON ? next_ndjson(p)
	    : p->fmt == DRE_IJOB_CSV         ? next_csv(p)
	                                     : next_json(p);
	if (o == RD_ROW) {
		*row = p->row.data ? p->row.data : "";
		*len = p->row.len;
		*next = p->next;
	}
	return o;
}

void
dre_ijob_reader_close(dre_ijob_reader *p)
{
	if (p == NULL)
		return;
	if (p->w.fd >= 0)
		close(p->w.fd);
	free(p->w.buf);
	if (p->tok)
		json_tokener_free(p->tok);
	if (p->csv_init)
		csv_free(&p->csv);
	for (size_t i = 0; i < p->nhdr; i++)
		free(p->hdr[i]);
	free(p->hdr);
	dre_buf_free(&p->fields);
	dre_buf_free(&p->nulls);
	dre_buf_free(&p->row);
	free(p->path);
	free(p);
}

dre_err
dre_ijob_reader_open(dre_ijob_reader **pp, const char *path, dre_ijob_fmt fmt,
    int64_t offset, dre_ijob_cell (*csv_cell)(const char *column))
{
	reader *p = calloc(1, sizeof *p);
	*pp = p;
	if (p == NULL)
		return DRE_ENOMEM;
	p->w.fd = -1;
	p->fmt = fmt;
	p->csv_cell = csv_cell;
	if ((p->path = strdup(path)) == NULL)
		return DRE_ENOMEM;
	if ((p->w.fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return DRE_EIO;
	if (fmt == DRE_IJOB_JSON) {
		if ((p->tok = json_tokener_new_ex(DRE_JSON_MAX_DEPTH)) == NULL)
			return DRE_ENOMEM;
		json_tokener_set_flags(p->tok,
		    JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS);
		p->state = offset > 0 ? 2 : 0;
	}
	if (fmt == DRE_IJOB_CSV) {
		if (csv_init(&p->csv,
		        CSV_STRICT | CSV_STRICT_FINI | CSV_EMPTY_IS_NULL)
		    != 0)
			return DRE_ENOMEM;
		p->csv_init = true;
		if (offset > 0) { // the header again, then the cursor
			if (next_csv(p) == RD_FAIL)
				return DRE_EPARSE;
		}
	}
	if (offset > 0) {
		if (lseek(p->w.fd, offset, SEEK_SET) != offset)
			return DRE_EIO;
		p->w.len = p->w.pos = 0;
		p->w.base = offset;
		p->w.eof = false;
	}
	return DRE_OK;
}

// line_col finds the line and column (1-based, in bytes) of offset.
static void
line_col(const char *path, int64_t offset, int64_t *line, int64_t *col)
{
	int     fd = open(path, O_RDONLY | O_CLOEXEC);
	char    b[65536];
	int64_t at = 0, ln = 1, last_nl = -1;
	while (fd >= 0 && at < offset) {
		ssize_t n = read(fd, b, sizeof b);
		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n && at < offset; i++, at++)
			if (b[i] == '\n') {
				ln++;
				last_nl = at;
			}
	}
	if (fd >= 0)
		close(fd);
	*line = ln;
	*col = offset - last_nl;
}

void
dre_ijob_reader_error(const dre_ijob_reader *p, char *out, size_t cap)
{
	int64_t line, col;
	line_col(p->path, p->err_off, &line, &col);
	snprintf(out, cap, "malformed %s at line %lld, column %lld: %s",
	    dre_ijob_fmt_name(p->fmt), (long long) line, (long long) col,
	    p->err);
}
