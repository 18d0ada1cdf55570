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
//
// http.max_connections_per_ip is counted here too, over every HTTP thread:
// each thread runs its own MHD daemon (http.c), and MHD counts addresses
// per daemon. A connection over the limit is shut down as it starts, before
// a byte of it is read, which is what MHD did (accept and close at once).
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <openssl/rand.h>

#include "dre/clock.h"
#include "dre/hash.h"
#include "dre/log.h"
#include "dre/svc.h"
#include "gw.h"

// How often the watcher looks: deadlines are kept within this much.
#define GW_WATCH_TICK_MS 100

// One list per phase with a deadline: lists[phase - 1].
#define NLISTS 3

// Open connections by client address: chained, 2^IP_BITS buckets.
#define IP_BITS 10

typedef struct ip_count ip_count;
struct ip_count {
	ip_count *next;
	uint32_t  n; // open connections
	uint8_t   len; // 4 (IPv4, also IPv4-mapped IPv6) or 16
	uint8_t   addr[16];
};

struct gw_conn {
	gw_conn      *prev, *next; // on lists[phase - 1] when listed
	enum gw_phase phase;
	int64_t       deadline; // monotonic millis
	int           fd;
	bool          listed;
	bool          cut; // shut down by the watcher; stays so
	ip_count     *ip; // counted against its address; NULL: not counted
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
	unsigned        per_ip; // 0: no limit
	uint32_t        seed; // of the address hash (clients choose addresses)
	ip_count       *ips[1u << IP_BITS];
};

// ip_key puts sa's address in out (IPv4-mapped IPv6 as IPv4) and returns
// its length; 0 for another family (not counted).
static uint8_t
ip_key(const struct sockaddr *sa, uint8_t out[16])
{
	static const uint8_t mapped[12]
	    = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	if (sa == NULL)
		return 0;
	if (sa->sa_family == AF_INET) {
		memcpy(out, &((const struct sockaddr_in *) sa)->sin_addr, 4);
		return 4;
	}
	if (sa->sa_family == AF_INET6) {
		const uint8_t *a
		    = ((const struct sockaddr_in6 *) sa)->sin6_addr.s6_addr;
		if (memcmp(a, mapped, sizeof(mapped)) == 0) {
			memcpy(out, a + 12, 4);
			return 4;
		}
		memcpy(out, a, 16);
		return 16;
	}
	return 0;
}

// ip_take counts one more connection of sa's address; NULL when it has
// per_ip already (or without memory: then it is not limited either, as
// the connection has no deadlines). The caller holds w->mu.
static ip_count *
ip_take(gw_watch *w, const struct sockaddr *sa, bool *refused)
{
	uint8_t   key[16];
	uint8_t   len = ip_key(sa, key);
	uint32_t  h;
	ip_count *c;

	*refused = false;
	if (w->per_ip == 0 || len == 0)
		return NULL;
	h = dre_fnv1a32(w->seed, key, len) >> (32 - IP_BITS);
	for (c = w->ips[h]; c != NULL; c = c->next)
		if (c->len == len && memcmp(c->addr, key, len) == 0)
			break;
	if (c == NULL) {
		if ((c = calloc(1, sizeof(*c))) == NULL)
			return NULL;
		c->len = len;
		memcpy(c->addr, key, len);
		c->next = w->ips[h];
		w->ips[h] = c;
	}
	if (c->n >= w->per_ip) {
		*refused = true;
		return NULL;
	}
	c->n++;
	return c;
}

// ip_release gives back c's connection; the caller holds w->mu.
static void
ip_release(gw_watch *w, ip_count *c)
{
	ip_count **pp;

	if (c == NULL || --c->n > 0)
		return;
	pp = &w->ips[dre_fnv1a32(w->seed, c->addr, c->len) >> (32 - IP_BITS)];
	while (*pp != c)
		pp = &(*pp)->next;
	*pp = c->next;
	free(c);
}

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
	dre_thread_name("conn:watch", NULL);

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
    int64_t header_timeout_ms, int64_t body_timeout_ms, unsigned per_ip)
{
	gw_watch          *w;
	pthread_condattr_t ca;
	int                rv;

	if ((w = calloc(1, sizeof(*w))) == NULL)
		return DRE_ENOMEM;
	w->lists[GW_PHASE_WAIT - 1].timeout_ms = wait_timeout_ms;
	w->lists[GW_PHASE_HEADERS - 1].timeout_ms = header_timeout_ms;
	w->lists[GW_PHASE_BODY - 1].timeout_ms = body_timeout_ms;
	w->per_ip = per_ip;
	if (RAND_bytes((unsigned char *) &w->seed, sizeof(w->seed)) != 1)
		w->seed = (uint32_t) dre_mono_ms();
	w->seed ^= DRE_FNV32_INIT;
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
	for (size_t i = 0; i < sizeof(w->ips) / sizeof(w->ips[0]); i++)
		while (w->ips[i] != NULL) {
			ip_count *c = w->ips[i];
			w->ips[i] = c->next;
			free(c);
		}
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	free(w);
}

bool
gw_watch_conn_open(gw_watch *w, struct MHD_Connection *conn, void **socket_ctx)
{
	const union MHD_ConnectionInfo *ci, *ca;
	gw_conn                        *c;
	bool                            refused;

	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	ca = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	// Without memory the connection has MHD's idle timeout only.
	if (ci == NULL || (c = calloc(1, sizeof(*c))) == NULL)
		return true;
	c->fd = ci->connect_fd;
	c->phase = GW_PHASE_NONE;
	pthread_mutex_lock(&w->mu);
	c->ip = ip_take(w, ca != NULL ? ca->client_addr : NULL, &refused);
	if (!refused)
		set_phase(w, c, GW_PHASE_WAIT);
	pthread_mutex_unlock(&w->mu);
	if (refused) {
		free(c);
		return false;
	}
	*socket_ctx = c;
	return true;
}

void
gw_watch_conn_close(gw_watch *w, void **socket_ctx)
{
	gw_conn *c = *socket_ctx;

	if (c == NULL)
		return;
	pthread_mutex_lock(&w->mu);
	unlink_conn(w, c);
	ip_release(w, c->ip);
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
