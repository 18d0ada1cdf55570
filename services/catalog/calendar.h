// catalog/calendar.h -- a campaign as an iCalendar (RFC 5545) document: one
// VEVENT per promotion validity, written with libical. Pure.
#ifndef CAT_CALENDAR_H
#define CAT_CALENDAR_H

#include <stddef.h>
#include <stdint.h>

#include "dre/buf.h"
#include "dre/err.h"

// One promotion of the campaign, borrowed for the call.
typedef struct {
	const char *id;
	const char *name;
	const char *description; // NULL: none
	int64_t     valid_from; // epoch millis; INT64_MIN = open
	int64_t     valid_to; // epoch millis; INT64_MAX = open
	int64_t     modified_at; // epoch millis (DTSTAMP); 0 = unknown
} cal_promotion;

// The campaign, borrowed for the call.
typedef struct {
	const char *id;
	const char *name;
	int64_t     start_day; // days since 1970-01-01; INT64_MIN = none
	int64_t     end_day; // included; INT64_MAX = none
	int64_t     modified_at; // epoch millis
} cal_campaign;

// cal_write appends the VCALENDAR of c with one VEVENT per promotion of
// p[0..n), in that order, to out (CRLF line ends, lines folded at 75
// octets, TEXT values escaped: libical does both). An event runs from the
// promotion's validFrom to its validTo, UTC; an open end takes the
// campaign's startDate (00:00Z) or the day after its endDate (00:00Z); a
// promotion without any start has no event. UID <promotion id>@<campaign
// id>.campaigns.dre is stable across exports, so a calendar app updates
// the event instead of adding another. DRE_ENOMEM, DRE_EINVAL (libical
// refused a value).
dre_err cal_write(
    dre_buf *out, const cal_campaign *c, const cal_promotion *p, size_t n);

#endif
