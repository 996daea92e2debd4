/*
 * events_tail.c - following outboxes in memory from "now" on; see the
 * tails in events.h.
 *
 * One thread, one connection (LISTEN on the events' channel), a position
 * (transaction id, sequence) per schema. Each round reads every schema's
 * new events in batches, then waits for a NOTIFY, the stop pipe, or
 * poll_ms: a NOTIFY is sent at commit, but an event stays invisible until
 * every older transaction has ended, so a quiet wait also reads again.
 */
#define _GNU_SOURCE /* pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "panthera/db.h"
#include "panthera/events.h"
#include "panthera/log.h"

#define TAIL_CHANNEL      "panthera_events" /* events.c's EV_CHANNEL */
#define TAIL_BATCH        "256"
#define TAIL_BATCH_N      256
#define TAIL_MAX_SCHEMAS  16
#define TAIL_TYPES_MAX    2048
#define TAIL_DEFAULT_POLL 1000u
#define TAIL_MAX_BACKOFF  5000u

typedef struct tail_pos {
	char schema[64];
	char txid[32]; /* "" until positioned */
	char seq[32];
} tail_pos;

struct ev_tail {
	char *url;
	tail_pos pos[TAIL_MAX_SCHEMAS];
	size_t n_pos;
	char types[TAIL_TYPES_MAX]; /* a text[] literal, or "" for every type */
	ev_tail_fn on_event;
	void (*on_gap)(void *arg);
	void *arg;
	uint32_t poll_ms;
	PGconn *conn;
	int wake[2]; /* the stop pipe */
	atomic_int stop;
	atomic_uint_fast64_t events, errors;
	int late; /* positions taken after start: report a gap */
	pthread_t thread;
};

static int type_valid(const char *t)
{
	if (t == NULL || t[0] == '\0')
		return 0;
	for (const char *p = t; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '.' || *p == '_'))
			return 0;
	return 1;
}

/* Connected and listening, or NULL. */
static PGconn *tail_connect(const char *url)
{
	PGconn *c = db_connect(url);
	if (c == NULL || PQstatus(c) != CONNECTION_OK) {
		if (c != NULL)
			PQfinish(c);
		return NULL;
	}
	PGresult *r = PQexec(c, "LISTEN " TAIL_CHANNEL);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	PQclear(r);
	if (!ok) {
		PQfinish(c);
		return NULL;
	}
	return c;
}

/* Drop a connection that has failed, so the next round opens another. */
static void tail_check_conn(ev_tail *t)
{
	if (t->conn != NULL && PQstatus(t->conn) != CONNECTION_OK) {
		PQfinish(t->conn);
		t->conn = NULL;
	}
}

/* Take every position not taken yet: past every transaction that has
 * ended (its snapshot's xmin - 1, the largest sequence). 0 when all are. */
static int tail_position(ev_tail *t)
{
	int missing = 0;
	for (size_t i = 0; i < t->n_pos; i++)
		missing |= t->pos[i].txid[0] == '\0';
	if (!missing)
		return 0;
	PGresult *r =
	    PQexec(t->conn, "SELECT (pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
	                    " - 1)::text");
	int ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
	if (ok)
		for (size_t i = 0; i < t->n_pos; i++)
			if (t->pos[i].txid[0] == '\0') {
				snprintf(t->pos[i].txid, sizeof(t->pos[i].txid), "%s",
				         PQgetvalue(r, 0, 0));
				snprintf(t->pos[i].seq, sizeof(t->pos[i].seq), "%" PRId64,
				         INT64_MAX);
			}
	PQclear(r);
	return ok ? 0 : -1;
}

/* Read one batch of one schema: the rows delivered, or -1. */
static int tail_read(ev_tail *t, tail_pos *p)
{
	char sql[640];
	int typed = t->types[0] != '\0';
	snprintf(sql, sizeof(sql),
	         "SELECT o.type, o.payload, o.txid::text, o.seq FROM \"%s\".outbox o"
	         " WHERE (o.txid, o.seq) > ($1::xid8, $2::bigint)"
	         " AND o.txid < pg_snapshot_xmin(pg_current_snapshot())%s"
	         " ORDER BY o.txid, o.seq LIMIT " TAIL_BATCH,
	         p->schema, typed ? " AND o.type = ANY($3::text[])" : "");
	const char *params[3] = {p->txid, p->seq, t->types};
	PGresult *r = PQexecParams(t->conn, sql, typed ? 3 : 2, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		/* 42P01: the outbox is not there yet (its producer has not
		 * started); not an error worth a line each round */
		const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
		if (state == NULL || strcmp(state, "42P01") != 0) {
			atomic_fetch_add(&t->errors, 1);
			log_write(LOG_WARN, NULL, "events.tail", "reading %s.outbox: %s", p->schema,
			          PQresultErrorMessage(r));
		}
		PQclear(r);
		return -1;
	}
	int n = PQntuples(r);
	for (int i = 0; i < n; i++) {
		size_t len = 0;
		unsigned char *payload =
		    PQunescapeBytea((const unsigned char *)PQgetvalue(r, i, 1), &len);
		if (payload == NULL) { /* out of memory: read it again next round */
			atomic_fetch_add(&t->errors, 1);
			PQclear(r);
			return -1;
		}
		t->on_event(p->schema, PQgetvalue(r, i, 0), payload, len, t->arg);
		PQfreemem(payload);
		atomic_fetch_add(&t->events, 1);
		snprintf(p->txid, sizeof(p->txid), "%s", PQgetvalue(r, i, 2));
		snprintf(p->seq, sizeof(p->seq), "%s", PQgetvalue(r, i, 3));
	}
	PQclear(r);
	return n;
}

/* Wait for a NOTIFY, the stop pipe or the timeout. */
static void tail_wait(ev_tail *t, uint32_t ms)
{
	struct pollfd pfd[2] = {{.fd = t->wake[0], .events = POLLIN},
	                        {.fd = t->conn ? PQsocket(t->conn) : -1, .events = POLLIN}};
	int n = poll(pfd, pfd[1].fd >= 0 ? 2 : 1, (int)ms);
	if (n > 0 && pfd[1].fd >= 0 && (pfd[1].revents & (POLLIN | POLLHUP | POLLERR))) {
		if (PQconsumeInput(t->conn) == 0) {
			tail_check_conn(t);
			return;
		}
		PGnotify *note;
		while ((note = PQnotifies(t->conn)) != NULL)
			PQfreemem(note);
	}
}

static void *tail_main(void *arg)
{
	ev_tail *t = arg;
	uint32_t backoff = 100;
	while (!atomic_load(&t->stop)) {
		if (t->conn == NULL && (t->conn = tail_connect(t->url)) == NULL) {
			atomic_fetch_add(&t->errors, 1);
			tail_wait(t, backoff);
			backoff = backoff * 2 > TAIL_MAX_BACKOFF ? TAIL_MAX_BACKOFF : backoff * 2;
			continue;
		}
		backoff = 100;
		if (tail_position(t) != 0) {
			tail_check_conn(t);
			tail_wait(t, t->poll_ms);
			continue;
		}
		if (t->late) {
			t->late = 0;
			log_write(
			    LOG_WARN, NULL, "events.tail",
			    "following the outboxes only now: changes made before may be missed");
			if (t->on_gap != NULL)
				t->on_gap(t->arg);
		}
		int more = 0;
		for (size_t i = 0; i < t->n_pos && !atomic_load(&t->stop); i++) {
			int n = tail_read(t, &t->pos[i]);
			if (n == TAIL_BATCH_N)
				more = 1;
		}
		tail_check_conn(t);
		if (!more)
			tail_wait(t, t->poll_ms);
	}
	return NULL;
}

static void tail_free(ev_tail *t)
{
	if (t->conn != NULL)
		PQfinish(t->conn);
	if (t->wake[0] >= 0)
		close(t->wake[0]);
	if (t->wake[1] >= 0)
		close(t->wake[1]);
	free(t->url);
	free(t);
}

rpc_status ev_tail_start(ev_tail **out, const ev_tail_opts *o)
{
	if (out == NULL)
		return RPC_STATUS_INVALID_ARGUMENT;
	*out = NULL;
	if (o == NULL || o->url == NULL || o->schemas == NULL || o->schemas[0] == NULL ||
	    o->on_event == NULL)
		return RPC_STATUS_INVALID_ARGUMENT;
	ev_tail *t = calloc(1, sizeof(*t));
	if (t == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	t->wake[0] = t->wake[1] = -1;
	rpc_status st = RPC_STATUS_OK;
	for (const char *const *s = o->schemas; *s != NULL; s++) {
		if (t->n_pos == TAIL_MAX_SCHEMAS || !db_identifier_valid(*s) ||
		    strlen(*s) >= sizeof(t->pos[0].schema)) {
			st = RPC_STATUS_INVALID_ARGUMENT;
			break;
		}
		snprintf(t->pos[t->n_pos++].schema, sizeof(t->pos[0].schema), "%s", *s);
	}
	/* the types as a text[] literal: {"a.B","c.D"}; type_valid() keeps
	 * quotes and backslashes out */
	size_t used = 0;
	for (const char *const *ty = o->types; st == RPC_STATUS_OK && ty && *ty; ty++) {
		if (!type_valid(*ty)) {
			st = RPC_STATUS_INVALID_ARGUMENT;
			break;
		}
		int n = snprintf(t->types + used, sizeof(t->types) - used, "%s\"%s\"",
		                 used ? "," : "{", *ty);
		if (n < 0 || (size_t)n >= sizeof(t->types) - used - 1) {
			st = RPC_STATUS_INVALID_ARGUMENT;
			break;
		}
		used += (size_t)n;
	}
	if (st == RPC_STATUS_OK && used > 0) {
		t->types[used++] = '}';
		t->types[used] = '\0';
	}
	t->on_event = o->on_event;
	t->on_gap = o->on_gap;
	t->arg = o->arg;
	t->poll_ms = o->poll_ms ? o->poll_ms : TAIL_DEFAULT_POLL;
	if (st == RPC_STATUS_OK && (t->url = strdup(o->url)) == NULL)
		st = RPC_STATUS_RESOURCE_EXHAUSTED;
	if (st == RPC_STATUS_OK && pipe2(t->wake, O_CLOEXEC | O_NONBLOCK) != 0)
		st = RPC_STATUS_RESOURCE_EXHAUSTED;
	if (st != RPC_STATUS_OK) {
		tail_free(t);
		return st;
	}
	/* the position now, when the database answers, so that what commits
	 * after the return is seen */
	t->conn = tail_connect(t->url);
	if (t->conn == NULL || tail_position(t) != 0) {
		t->late = 1;
		log_write(LOG_WARN, NULL, "events.tail",
		          "the database does not answer: following the outboxes in the background");
		tail_check_conn(t);
	}
	if (pthread_create(&t->thread, NULL, tail_main, t) != 0) {
		tail_free(t);
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	}
	*out = t;
	return RPC_STATUS_OK;
}

void ev_tail_counts(const ev_tail *t, uint64_t *events, uint64_t *errors)
{
	if (events != NULL)
		*events = t ? atomic_load(&t->events) : 0;
	if (errors != NULL)
		*errors = t ? atomic_load(&t->errors) : 0;
}

void ev_tail_stop(ev_tail *t)
{
	if (t == NULL)
		return;
	atomic_store(&t->stop, 1);
	ssize_t w;
	do
		w = write(t->wake[1], "x", 1);
	while (w < 0 && errno == EINTR);
	pthread_join(t->thread, NULL);
	tail_free(t);
}
