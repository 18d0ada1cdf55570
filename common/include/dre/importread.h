// dre/importread.h -- an import job's uploaded file read row by row, as
// the job's worker does (dre/importjob.h): a JSON array of rows framed by
// json-c's incremental tokener, NDJSON (one row per line, blank lines
// skipped) or CSV through libcsv (a header, then each record as a JSON
// object of its non-empty cells). Exposed for the fuzz target fuzz_import.
#ifndef DRE_IMPORTREAD_H
#define DRE_IMPORTREAD_H

#include <stddef.h>
#include <stdint.h>

#include "dre/err.h"
#include "dre/importjob.h"

#define DRE_IJOB_MAX_ROW (1u << 20) // one row's bytes at most

typedef struct dre_ijob_reader dre_ijob_reader;

typedef enum {
	DRE_IJOB_RD_ROW, // a row
	DRE_IJOB_RD_END, // the end of the file
	DRE_IJOB_RD_FAIL, // a malformed file: dre_ijob_reader_error
} dre_ijob_rd;

// dre_ijob_reader_open opens the file at path at offset: 0, or the next
// offset of a row read before (a job resuming after a restart; a CSV
// file's header is read again first). csv_cell gives a CSV column's kind
// of value (NULL: every cell a string). DRE_EIO: the file cannot be
// opened; DRE_EPARSE: a CSV header that cannot be read again; DRE_ENOMEM.
// *pp is set in every case and is closed with dre_ijob_reader_close.
dre_err dre_ijob_reader_open(dre_ijob_reader **pp, const char *path,
    dre_ijob_fmt fmt, int64_t offset,
    dre_ijob_cell (*csv_cell)(const char *column));

// dre_ijob_reader_next reads the next row: its JSON text in *row, *len
// (valid until the next call; NDJSON and JSON rows are the file's bytes,
// not checked further) and the file offset after it in *next.
dre_ijob_rd dre_ijob_reader_next(
    dre_ijob_reader *p, const char **row, size_t *len, int64_t *next);

// dre_ijob_reader_error writes why the file is malformed, after
// DRE_IJOB_RD_FAIL: "malformed CSV at line 3, column 7: <why>" (line and
// column 1-based, the column in bytes).
void dre_ijob_reader_error(const dre_ijob_reader *p, char *out, size_t cap);

void dre_ijob_reader_close(dre_ijob_reader *p);

#endif
