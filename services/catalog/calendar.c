// catalog/calendar.c -- a campaign as an iCalendar document, through libical
// (escaping, folding and the value formats are the library's).
#include "calendar.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libical/ical.h>

#define DAY_MS (24LL * 3600 * 1000)

static pthread_once_t once = PTHREAD_ONCE_INIT;

// libical aborts on its own errors when they are "fatal" (a build
// option); a bad value must become an error answer instead.
static void
init(void)
{
	icalerror_set_errors_are_fatal(0);
}

static struct icaltimetype
utc(int64_t ms)
{
	return icaltime_from_timet_with_zone(
	    (time_t) (ms / 1000), 0, icaltimezone_get_utc_timezone());
}

static icalcomponent *
event(const cal_campaign *c, const cal_promotion *p, int64_t now_ms)
{
	int64_t from = p->valid_from, to = p->valid_to;
	if (from == INT64_MIN && c->start_day != INT64_MIN)
		from = c->start_day * DAY_MS;
	if (to == INT64_MAX && c->end_day != INT64_MAX)
		to = (c->end_day + 1) * DAY_MS;
	if (from == INT64_MIN)
		return NULL; // no start: nothing to put in a calendar
	char uid[256];
	snprintf(uid, sizeof uid, "%s@%s.campaigns.dre", p->id, c->id);
	icalcomponent *ev = icalcomponent_new_vevent();
	if (ev == NULL)
		return NULL;
	icalcomponent_add_property(ev, icalproperty_new_uid(uid));
	icalcomponent_add_property(ev,
	    icalproperty_new_dtstamp(
	        utc(p->modified_at > 0 ? p->modified_at : now_ms)));
	icalcomponent_add_property(ev, icalproperty_new_dtstart(utc(from)));
	if (to != INT64_MAX)
		icalcomponent_add_property(
		    ev, icalproperty_new_dtend(utc(to)));
	icalcomponent_add_property(ev, icalproperty_new_summary(p->name));
	if (p->description != NULL && p->description[0] != '\0')
		icalcomponent_add_property(
		    ev, icalproperty_new_description(p->description));
	return ev;
}

dre_err
cal_write(
    dre_buf *out, const cal_campaign *c, const cal_promotion *p, size_t n)
{
	pthread_once(&once, init);
	icalcomponent *cal = icalcomponent_new_vcalendar();
	if (cal == NULL)
		return DRE_ENOMEM;
	icalcomponent_add_property(
	    cal, icalproperty_new_prodid("-//DRE//Campaigns//EN"));
	icalcomponent_add_property(cal, icalproperty_new_version("2.0"));
	icalcomponent_add_property(
	    cal, icalproperty_new_calscale("GREGORIAN"));
	icalcomponent_add_property(
	    cal, icalproperty_new_method(ICAL_METHOD_PUBLISH));
	// The calendar's name in Apple Calendar, Google Calendar, Outlook.
	// libical escapes line breaks and backslashes of an X- property
	// (commas and semicolons stay, as those apps write them).
	icalproperty *name = icalproperty_new_x(c->name);
	if (name != NULL) {
		icalproperty_set_x_name(name, "X-WR-CALNAME");
		icalcomponent_add_property(cal, name);
	}
	for (size_t i = 0; i < n; i++) {
		icalcomponent *ev = event(c, &p[i], c->modified_at);
		if (ev != NULL)
			icalcomponent_add_component(cal, ev);
	}
	icalerror_clear_errno();
	char   *text = icalcomponent_as_ical_string_r(cal);
	dre_err err = DRE_OK;
	if (text == NULL)
		err = icalerrno == ICAL_NEWFAILED_ERROR ? DRE_ENOMEM
		                                        : DRE_EINVAL;
	else
		dre_buf_append(out, text, strlen(text));
	icalmemory_free_buffer(text);
	icalcomponent_free(cal);
	if (err == DRE_OK && out->oom)
		err = DRE_ENOMEM;
	return err;
}
