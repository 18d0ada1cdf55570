// conn.c -- per-connection deadlines MHD does not have: a request line
// must arrive within http.idle_timeout_ms of the connection opening (or of
// the previous answer), its headers must be complete within
// http.header_timeout_ms of the request line, and its body within
// http.body_timeout_ms of the headers, however slowly the bytes trickle in.
//
// MHD's own connection timeout is an idle timeout: it restarts with every
// byte, so a client sending a header line every 20 s keeps a connection
// (and, before the connection limits, a slot of the server) forever. MHD
// 0.9.75 has no total header or body timeout and no call to close a
// connection from outside its own thread, so:
//
//  - each connection gets a gw_conn (MHD's socket context), created in the
//    NOTIFY_CONNECTION "started" callback and freed in the "closed" one;
//  - the HTTP callbacks move it between phases: WAIT (from accept, and from
//    each completed request, until the next request line), HEADERS (from
//    the request line: MHD's URI callback is the earliest sign of a request
//    MHD gives), BODY (headers complete, body being read) and NONE (call in
//    flight, answer being sent: MHD's idle timeout alone applies);
//  - a phase with a deadline puts the connection on that phase's list. Every
//    entry of a list has the same timeout and is appended under the lock
//    with the current time, so each list is sorted by deadline: the watcher
//    thread only ever looks at the heads;
//  - the watcher wakes every GW_WATCH_TICK_MS and shutdown()s the socket of
//    each connection past its deadline. MHD then reads EOF in its own
//    thread and closes the connection the normal way (no answer is sent: the
//    client is not reading one). shutdown() never races with the close of
//    the fd: MHD calls the "closed" notification, which unlinks the entry
//    under the same lock, before it closes the socket.
//
// WAIT uses the idle timeout as a total: an idle keep-alive client (or a
// pool's connection opened ahead of use) is closed when MHD would close it
// anyway, but a request line trickled a byte at a time is bounded too.
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "dre/clock.h"
#include "dre/log.h"
#include "gw.h"

// How often the watcher looks: deadlines are kept within this much.
#define GW_WATCH_TICK_MS 100

// One list per phase with a deadline: lists[phase - 1].
#define NLISTS 3

struct gw_conn {
	gw_conn      *prev, *next; // on lists[phase - 1] when listed
	enum gw_phase phase;
	int64_t       deadline; // monotonic millis
	int           fd;
	bool          listed;
	bool          cut; // shut down by the watcher; stays so
};

typedef struct {
	gw_conn *head, *tail;
	int64_t  timeout_ms; // 0: no deadline in this phase
	uint64_t cut; // connections cut since the last log line
} deadline_list;

// How a phase's cuts are logged: idle connections are routine.
static const struct {
	dre_log_level level;
	const char   *what;
} cut_log[NLISTS] = {
	[GW_PHASE_WAIT - 1]
	= { DRE_LOG_DEBUG, "idle connection(s): no request line" },
	[GW_PHASE_HEADERS - 1]
	= { DRE_LOG_WARN, "connection(s): request headers not complete" },
	[GW_PHASE_BODY - 1]
	= { DRE_LOG_WARN, "connection(s): request body not complete" },
};

struct gw_watch {
	pthread_mutex_t mu;
	pthread_cond_t  cv;
	pthread_t       thread;
	bool            stop;
	deadline_list   lists[NLISTS];
};

static void
unlink_conn(gw_watch *w, gw_conn *c)
{
	deadline_list *l;

	if (!c->listed)
		return;
	l = &w->lists[c->phase - 1];
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		l->head = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	else
		l->tail = c->prev;
	c->prev = c->next = NULL;
	c->listed = false;
}

// set_phase moves c to phase p; the caller holds w->mu.
static void
set_phase(gw_watch *w, gw_conn *c, enum gw_phase p)
{
	deadline_list *l;

	if (c->cut)
		return;
	unlink_conn(w, c);
	c->phase = p;
	if (p == GW_PHASE_NONE)
		return;
	l = &w->lists[p - 1];
	if (l->timeout_ms <= 0)
		return;
	c->deadline = dre_mono_ms() + l->timeout_ms;
	c->prev = l->tail;
	c->next = NULL;
	if (l->tail != NULL)
		l->tail->next = c;
	else
		l->head = c;
	l->tail = c;
	c->listed = true;
}

// move is set_phase under the lock.
static void
move(gw_watch *w, gw_conn *c, enum gw_phase p)
{
	pthread_mutex_lock(&w->mu);
	set_phase(w, c, p);
	pthread_mutex_unlock(&w->mu);
}

static void *
watch_run(void *arg)
{
	gw_watch *w = arg;

	pthread_mutex_lock(&w->mu);
	while (!w->stop) {
		struct timespec ts;
		uint64_t        cut[NLISTS], any = 0;
		int64_t         now;

		ts = dre_timespec_after(CLOCK_MONOTONIC, GW_WATCH_TICK_MS);
		pthread_cond_timedwait(&w->cv, &w->mu, &ts);
		now = dre_mono_ms();
		for (int i = 0; i < NLISTS; i++) {
			deadline_list *l = &w->lists[i];
			gw_conn       *c;

			while ((c = l->head) != NULL && c->deadline <= now) {
				unlink_conn(w, c);
				c->cut = true;
				// Wakes MHD's thread with EOF; it closes.
				shutdown(c->fd, SHUT_RDWR);
				l->cut++;
			}
			cut[i] = l->cut;
			any += l->cut;
			l->cut = 0;
		}
		if (any == 0)
			continue;
		pthread_mutex_unlock(&w->mu);
		// One line per tick and phase, not one per connection: a
		// slowloris run must not flood the log.
		for (int i = 0; i < NLISTS; i++)
			if (cut[i] > 0)
				dre_log(cut_log[i].level,
				    "closed %llu %s within %lld ms",
				    (unsigned long long) cut[i],
				    cut_log[i].what,
				    (long long) w->lists[i].timeout_ms);
		pthread_mutex_lock(&w->mu);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

dre_err
gw_watch_open(gw_watch **wp, int64_t wait_timeout_ms,
    int64_t header_timeout_ms, int64_t body_timeout_ms)
{
	gw_watch          *w;
	pthread_condattr_t ca;
	int                rv;

	if ((w = calloc(1, sizeof(*w))) == NULL)
		return DRE_ENOMEM;
	w->lists[GW_PHASE_WAIT - 1].timeout_ms = wait_timeout_ms;
	w->lists[GW_PHASE_HEADERS - 1].timeout_ms = header_timeout_ms;
	w->lists[GW_PHASE_BODY - 1].timeout_ms = body_timeout_ms;
	pthread_mutex_init(&w->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cv, &ca);
	pthread_condattr_destroy(&ca);
	if ((rv = pthread_create(&w->thread, NULL, watch_run, w)) != 0) {
		dre_error(
		    "cannot start the connection watcher: %s", strerror(rv));
		pthread_cond_destroy(&w->cv);
		pthread_mutex_destroy(&w->mu);
		free(w);
		return DRE_EIO;
	}
	*wp = w;
	return DRE_OK;
}

void
gw_watch_close(gw_watch *w)
{
	if (w == NULL)
		return;
	pthread_mutex_lock(&w->mu);
	w->stop = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	free(w);
}

void
gw_watch_conn_open(gw_watch *w, struct MHD_Connection *conn, void **socket_ctx)
{
	const union MHD_ConnectionInfo *ci;
	gw_conn                        *c;

	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	// Without memory the connection has MHD's idle timeout only.
	if (ci == NULL || (c = calloc(1, sizeof(*c))) == NULL)
		return;
	c->fd = ci->connect_fd;
	c->phase = GW_PHASE_NONE;
	move(w, c, GW_PHASE_WAIT);
	*socket_ctx = c;
}

void
gw_watch_conn_close(gw_watch *w, void **socket_ctx)
{
	gw_conn *c = *socket_ctx;

	if (c == NULL)
		return;
	pthread_mutex_lock(&w->mu);
	unlink_conn(w, c);
	pthread_mutex_unlock(&w->mu);
	free(c);
	*socket_ctx = NULL;
}

void
gw_watch_phase(gw_watch *w, struct MHD_Connection *conn, enum gw_phase p)
{
	const union MHD_ConnectionInfo *ci;
	gw_conn                        *c;

	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	if (ci == NULL || (c = ci->socket_context) == NULL)
		return;
	move(w, c, p);
}
