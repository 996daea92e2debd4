/*
 * events.c - the transactional outbox and its consumers; see events.h.
 */
#include "panthera/events.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "panthera/ids.h"
#include "panthera/log.h"

#define EV_DEFAULT_BATCH      64u
#define EV_DEFAULT_ATTEMPTS   5u
#define EV_DEFAULT_BACKOFF_MS 100u
#define EV_MAX_BACKOFF_MS     60000u
#define EV_CHANNEL            "panthera_events"
/* the outbox row's created_at as RFC 3339 UTC, whatever the session's TimeZone */
#define EV_TIME_SQL "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

struct ev_consumer {
	ev_consumer_opts o;
	char name[128];
	char src[80]; /* quoted schema names */
	char own[80];
	PGconn *listen;
	/* rounds in a row that found committed events held back behind an
	 * older transaction still running (0: none held back) */
	unsigned held_back;
};

static void quote(char *out, size_t cap, const char *schema)
{
	snprintf(out, cap, "\"%s\"", schema);
}

/*
 * Run sql[0..n) in one transaction under the schema's advisory lock (the key
 * db_migrate takes), so that processes starting together do not race on
 * CREATE ... IF NOT EXISTS. sql[0] creates `schema` and is skipped when it
 * exists: a service's role may create tables in its schema but not schemas.
 * When every relation of `probe` (NULL-terminated, quoted names) exists,
 * nothing runs: CREATE INDEX IF NOT EXISTS wants the table's owner even
 * when the index is there, and a reader is not the owner.
 */
static rpc_status exec_ddl(db_pool *pool, const char *schema, const char *const *sql, size_t n,
                           const char *const *probe)
{
	db_conn *c;
	rpc_status st = db_acquire(pool, 30000, &c);
	if (st != RPC_STATUS_OK)
		return st;
	const char *p[1] = {schema};
	PGresult *r;
	size_t first = 0;
	int all_there = probe != NULL;
	for (const char *const *rel = probe; rel != NULL && *rel != NULL && all_there; rel++) {
		const char *pr[1] = {*rel};
		if ((st = db_exec(c, NULL, "SELECT to_regclass($1) IS NOT NULL", 1, pr, &r)) !=
		    RPC_STATUS_OK)
			goto out;
		all_there = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
		PQclear(r);
	}
	if (all_there)
		goto out;
	if ((st = db_exec(c, NULL, "BEGIN", 0, NULL, NULL)) != RPC_STATUS_OK ||
	    (st = db_exec(c, NULL, "SELECT pg_advisory_xact_lock(hashtext($1))", 1, p, NULL)) !=
	        RPC_STATUS_OK)
		goto out;
	if ((st = db_exec(c, NULL, "SELECT 1 FROM pg_namespace WHERE nspname = $1", 1, p, &r)) ==
	    RPC_STATUS_OK) {
		first = PQntuples(r) > 0;
		PQclear(r);
	}
	for (size_t i = first; i < n && st == RPC_STATUS_OK; i++)
		st = db_exec(c, NULL, sql[i], 0, NULL, NULL);
	if (st == RPC_STATUS_OK)
		st = db_exec(c, NULL, "COMMIT", 0, NULL, NULL);
out:
	db_release(pool, c); /* rolls back what did not commit */
	return st;
}

rpc_status ev_outbox_setup(db_pool *pool, const char *schema)
{
	if (pool == NULL || !db_identifier_valid(schema))
		return RPC_STATUS_INVALID_ARGUMENT;
	char q[80], s1[256], s2[1024], s3[512], s4[256];
	quote(q, sizeof(q), schema);
	snprintf(s1, sizeof(s1), "CREATE SCHEMA IF NOT EXISTS %s", q);
	snprintf(s2, sizeof(s2),
	         "CREATE TABLE IF NOT EXISTS %s.outbox ("
	         " id uuid PRIMARY KEY,"
	         " seq bigserial NOT NULL UNIQUE,"
	         " txid xid8 NOT NULL DEFAULT pg_current_xact_id(),"
	         " type text NOT NULL,"
	         " aggregate_id text NOT NULL DEFAULT '',"
	         " payload bytea NOT NULL,"
	         " created_at timestamptz NOT NULL DEFAULT now())",
	         q);
	/* how far each consumer has read, wherever its own cursor lives: what
	 * every reader has passed may be pruned (ev_prune_outbox) */
	snprintf(s3, sizeof(s3),
	         "CREATE TABLE IF NOT EXISTS %s.outbox_readers (consumer text PRIMARY KEY,"
	         " last_txid xid8 NOT NULL DEFAULT '0', last_seq bigint NOT NULL DEFAULT 0,"
	         " updated_at timestamptz NOT NULL DEFAULT now())",
	         q);
	/* consumers read, and pruning deletes, in (txid, seq) order */
	snprintf(s4, sizeof(s4),
	         "CREATE INDEX IF NOT EXISTS outbox_txid_seq ON %s.outbox (txid, seq)", q);
	const char *sql[] = {s1, s2, s3, s4};
	char r1[100], r2[100], r3[100];
	snprintf(r1, sizeof(r1), "%s.outbox", q);
	snprintf(r2, sizeof(r2), "%s.outbox_readers", q);
	snprintf(r3, sizeof(r3), "%s.outbox_txid_seq", q);
	const char *probe[] = {r1, r2, r3, NULL};
	return exec_ddl(pool, schema, sql, 4, probe);
}

rpc_status ev_publish(db_conn *conn, const char *schema, const char *type, const char *aggregate_id,
                      const uint8_t *payload, size_t payload_len, char *id_out)
{
	if (conn == NULL || !db_identifier_valid(schema) || type == NULL ||
	    (payload == NULL && payload_len))
		return RPC_STATUS_INVALID_ARGUMENT;
	if (payload_len > (64u << 20))
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	char id[ID_UUID_LEN + 1];
	rpc_status st = id_uuid4(id);
	if (st != RPC_STATUS_OK)
		return st;
	/* bytea in its hex text form: \x followed by two digits a byte */
	static const char hex[] = "0123456789abcdef";
	char *text = malloc(2 * payload_len + 3);
	if (text == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	text[0] = '\\';
	text[1] = 'x';
	for (size_t i = 0; i < payload_len; i++) {
		text[2 + 2 * i] = hex[payload[i] >> 4];
		text[3 + 2 * i] = hex[payload[i] & 15];
	}
	text[2 + 2 * payload_len] = '\0';
	char q[80], sql[512];
	quote(q, sizeof(q), schema);
	/* The row and the NOTIFY in one round trip; PostgreSQL delivers the
	 * notification when (and only if) the transaction commits. */
	snprintf(sql, sizeof(sql),
	         "WITH e AS (INSERT INTO %s.outbox (id, type, aggregate_id, payload)"
	         " VALUES ($1, $2, $3, $4::bytea) RETURNING 1)"
	         " SELECT pg_notify('" EV_CHANNEL "', $5) FROM e",
	         q);
	const char *p[5] = {id, type, aggregate_id ? aggregate_id : "", text, schema};
	PGresult *r = NULL;
	st = db_exec(conn, NULL, sql, 5, p, &r);
	free(text);
	if (st == RPC_STATUS_OK && PQntuples(r) != 1)
		st = RPC_STATUS_INTERNAL; /* the insert would have raised an error */
	PQclear(r);
	if (st == RPC_STATUS_OK && id_out != NULL)
		memcpy(id_out, id, sizeof(id));
	return st;
}

static rpc_status register_reader(ev_consumer *c, db_conn *held, const char *txid, const char *seq,
                                  int reset);

rpc_status ev_consumer_open(ev_consumer **out, const ev_consumer_opts *opts)
{
	*out = NULL;
	if (opts == NULL || opts->name == NULL || strlen(opts->name) >= 128 ||
	    opts->source == NULL || opts->own == NULL || opts->handler == NULL ||
	    !db_identifier_valid(opts->source_schema) || !db_identifier_valid(opts->own_schema))
		return RPC_STATUS_INVALID_ARGUMENT;
	ev_consumer *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	c->o = *opts;
	snprintf(c->name, sizeof(c->name), "%s", opts->name);
	c->o.name = c->name;
	if (c->o.batch == 0)
		c->o.batch = EV_DEFAULT_BATCH;
	if (c->o.max_attempts == 0)
		c->o.max_attempts = EV_DEFAULT_ATTEMPTS;
	if (c->o.backoff_ms == 0)
		c->o.backoff_ms = EV_DEFAULT_BACKOFF_MS;
	quote(c->src, sizeof(c->src), opts->source_schema);
	quote(c->own, sizeof(c->own), opts->own_schema);
	char s0[256], s1[512], s2[512], s3[512], s4[1024], s5[256];
	snprintf(s0, sizeof(s0), "CREATE SCHEMA IF NOT EXISTS %s", c->own);
	snprintf(s1, sizeof(s1),
	         "CREATE TABLE IF NOT EXISTS %s.event_cursors (consumer text, source text,"
	         " last_txid xid8 NOT NULL DEFAULT '0', last_seq bigint NOT NULL DEFAULT 0,"
	         " PRIMARY KEY (consumer, source))",
	         c->own);
	snprintf(
	    s2, sizeof(s2),
	    "CREATE TABLE IF NOT EXISTS %s.processed_events (consumer text, event_id uuid,"
	    " processed_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (consumer, event_id))",
	    c->own);
	snprintf(s3, sizeof(s3),
	         "CREATE TABLE IF NOT EXISTS %s.event_attempts (consumer text, event_id uuid,"
	         " attempts int NOT NULL, next_attempt_at timestamptz NOT NULL,"
	         " PRIMARY KEY (consumer, event_id))",
	         c->own);
	snprintf(
	    s4, sizeof(s4),
	    "CREATE TABLE IF NOT EXISTS %s.dead_letters (consumer text, event_id uuid, source text,"
	    " seq bigint, type text, aggregate_id text, payload bytea, error text, attempts int,"
	    " parked_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (consumer, event_id))",
	    c->own);
	/* added after the first release: tables created before lack it */
	snprintf(s5, sizeof(s5),
	         "ALTER TABLE %s.dead_letters ADD COLUMN IF NOT EXISTS occurred_at text", c->own);
	const char *ddl[] = {s0, s1, s2, s3, s4, s5};
	rpc_status st = exec_ddl(opts->own, opts->own_schema, ddl, 6, NULL);
	if (st == RPC_STATUS_OK) /* the producer's outbox and its readers' table */
		st = ev_outbox_setup(opts->source, opts->source_schema);
	/* A new cursor starts at the beginning of the outbox, or with
	 * start_at_now past every transaction that has ended in the source:
	 * (its snapshot's xmin - 1, the largest seq). */
	char start_txid[32] = "0";
	if (st == RPC_STATUS_OK && opts->start_at_now) {
		db_conn *sc;
		PGresult *r = NULL;
		if ((st = db_acquire(opts->source, 30000, &sc)) == RPC_STATUS_OK) {
			st = db_exec(
			    sc, NULL,
			    "SELECT (pg_snapshot_xmin(pg_current_snapshot())::text::bigint - 1)"
			    "::text",
			    0, NULL, &r);
			if (st == RPC_STATUS_OK)
				snprintf(start_txid, sizeof(start_txid), "%s", PQgetvalue(r, 0, 0));
			PQclear(r);
			db_release(opts->source, sc);
		}
	}
	if (st == RPC_STATUS_OK) {
		db_conn *conn;
		if ((st = db_acquire(opts->own, 30000, &conn)) == RPC_STATUS_OK) {
			char sql[256];
			snprintf(
			    sql, sizeof(sql),
			    "INSERT INTO %s.event_cursors (consumer, source, last_txid, last_seq)"
			    " VALUES ($1, $2, $3::xid8, $4::bigint) ON CONFLICT DO NOTHING",
			    c->own);
			const char *p[4] = {c->name, opts->source_schema, start_txid,
			                    opts->start_at_now ? "9223372036854775807" : "0"};
			st = db_exec(conn, NULL, sql, 4, p, NULL);
			PGresult *r = NULL;
			snprintf(sql, sizeof(sql),
			         "SELECT last_txid::text, last_seq FROM %s.event_cursors"
			         " WHERE consumer = $1 AND source = $2",
			         c->own);
			if (st == RPC_STATUS_OK &&
			    (st = db_exec(conn, NULL, sql, 2, p, &r)) == RPC_STATUS_OK) {
				if (PQntuples(r) == 1)
					st = register_reader(
					    c, opts->source == opts->own ? conn : NULL,
					    PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1), 1);
				PQclear(r);
			}
			db_release(opts->own, conn);
		}
	}
	if (st != RPC_STATUS_OK) {
		free(c);
		return st;
	}
	*out = c;
	return RPC_STATUS_OK;
}

/*
 * Tell the producer how far this consumer has read: a row of
 * <source>.outbox_readers, which ev_prune_outbox never deletes past. At
 * open (`reset`) it is set to the cursor, whatever it was; after a batch it
 * only moves forward. It is written after the consumer's own commit, so it
 * never runs ahead of the cursor: a lost update only delays pruning.
 */
static rpc_status register_reader(ev_consumer *c, db_conn *held, const char *txid, const char *seq,
                                  int reset)
{
	db_conn *src = held; /* a connection to the source, idle, or NULL */
	rpc_status st = held != NULL ? RPC_STATUS_OK : db_acquire(c->o.source, 30000, &src);
	if (st != RPC_STATUS_OK)
		return st;
	char sql[512];
	snprintf(
	    sql, sizeof(sql),
	    "INSERT INTO %s.outbox_readers AS r (consumer, last_txid, last_seq)"
	    " VALUES ($1, $2::xid8, $3::bigint) ON CONFLICT (consumer) DO UPDATE"
	    " SET last_txid = EXCLUDED.last_txid, last_seq = EXCLUDED.last_seq,"
	    " updated_at = now()%s",
	    c->src,
	    reset ? ""
	          : " WHERE (r.last_txid, r.last_seq) < (EXCLUDED.last_txid, EXCLUDED.last_seq)");
	const char *p[3] = {c->name, txid, seq};
	st = db_exec(src, NULL, sql, 3, p, NULL);
	if (held == NULL)
		db_release(c->o.source, src);
	return st;
}

void ev_consumer_close(ev_consumer *c)
{
	if (c == NULL)
		return;
	if (c->listen != NULL)
		PQfinish(c->listen);
	free(c);
}

/* Run the handler on one event inside a savepoint; the caller records it
 * as processed when it succeeds. */
static rpc_status apply_one(ev_consumer *c, db_conn *own, const ev_event *ev)
{
	rpc_status st = db_exec(own, NULL, "SAVEPOINT ev", 0, NULL, NULL);
	if (st != RPC_STATUS_OK)
		return st;
	rpc_status hst = c->o.handler(own, ev, c->o.arg);
	if (hst == RPC_STATUS_OK)
		return db_exec(own, NULL, "RELEASE SAVEPOINT ev", 0, NULL, NULL);
	st = db_exec(own, NULL, "ROLLBACK TO SAVEPOINT ev", 0, NULL, NULL);
	return st == RPC_STATUS_OK ? hst : st;
}

/* One event failed: count the attempt; park it after the last. Returns 1
 * when parked (the cursor may move past it), 0 when it waits for a retry,
 * -1 on a database error (*st says which). */
static int record_failure(ev_consumer *c, db_conn *own, const ev_event *ev, rpc_status why,
                          const char *payload_text, rpc_status *st)
{
	char sql[768], backoff[32], attempts[16];
	unsigned shift = ev->attempt - 1 < 16 ? (unsigned)ev->attempt - 1 : 16;
	uint64_t delay = (uint64_t)c->o.backoff_ms << shift;
	if (delay > EV_MAX_BACKOFF_MS)
		delay = EV_MAX_BACKOFF_MS;
	snprintf(backoff, sizeof(backoff), "%llu", (unsigned long long)delay);
	snprintf(attempts, sizeof(attempts), "%d", ev->attempt);
	if ((unsigned)ev->attempt < c->o.max_attempts) {
		snprintf(
		    sql, sizeof(sql),
		    "INSERT INTO %s.event_attempts (consumer, event_id, attempts, next_attempt_at)"
		    " VALUES ($1, $2, $3::int, now() + $4::int * interval '1 millisecond')"
		    " ON CONFLICT (consumer, event_id) DO UPDATE SET attempts = EXCLUDED.attempts,"
		    " next_attempt_at = EXCLUDED.next_attempt_at",
		    c->own);
		const char *p[4] = {c->name, ev->id, attempts, backoff};
		*st = db_exec(own, NULL, sql, 4, p, NULL);
		log_write(LOG_WARN, NULL, "events.retry",
		          "%s: event %s (%s) failed with %s, attempt %d of %u", c->name, ev->id,
		          ev->type, rpc_status_name(why), ev->attempt, c->o.max_attempts);
		return *st == RPC_STATUS_OK ? 0 : -1;
	}
	snprintf(sql, sizeof(sql),
	         "INSERT INTO %s.dead_letters (consumer, event_id, source, seq, type, aggregate_id,"
	         " payload, error, attempts, occurred_at)"
	         " VALUES ($1, $2, $3, $4::bigint, $5, $6, $7::bytea, $8, $9::int, $10)"
	         " ON CONFLICT DO NOTHING",
	         c->own);
	char seq[32];
	snprintf(seq, sizeof(seq), "%lld", (long long)ev->seq);
	const char *p[10] = {c->name,  ev->id,           c->o.source_schema, seq,
	                     ev->type, ev->aggregate_id, payload_text,       rpc_status_name(why),
	                     attempts, ev->occurred_at};
	*st = db_exec(own, NULL, sql, 10, p, NULL);
	if (*st == RPC_STATUS_OK) {
		snprintf(sql, sizeof(sql),
		         "DELETE FROM %s.event_attempts WHERE consumer = $1 AND event_id = $2",
		         c->own);
		const char *d[2] = {c->name, ev->id};
		*st = db_exec(own, NULL, sql, 2, d, NULL);
	}
	log_write(LOG_ERROR, NULL, "events.dead_letter",
	          "%s: event %s (%s) parked after %d attempts (%s)", c->name, ev->id, ev->type,
	          ev->attempt, rpc_status_name(why));
	return *st == RPC_STATUS_OK ? 1 : -1;
}

/* 1 when the consumer takes events of `type` (no filter: every type). */
static int wanted(const ev_consumer *c, const char *type)
{
	if (c->o.types == NULL)
		return 1;
	for (const char *const *t = c->o.types; *t != NULL; t++)
		if (strcmp(*t, type) == 0)
			return 1;
	return 0;
}

/* Append `id` (a UUID the outbox typed) to the array literal in buf. */
static int add_id(char *buf, size_t cap, size_t *len, const char *id)
{
	int n = snprintf(buf + *len, cap - *len, "%s%s", *len > 1 ? "," : "", id);
	if (n < 0 || (size_t)n >= cap - *len)
		return -1;
	*len += (size_t)n;
	return 0;
}

/*
 * One batch in one transaction of the consumer's database: lock the cursor,
 * read up to `batch` events past it, look up which of them were processed
 * or wait for a retry (one query for the batch), apply the others each in
 * a savepoint, then record the processed ids and move the cursor once.
 * Events of types the consumer does not take only move the cursor.
 *
 * A batch first runs without savepoints (two round trips an event fewer).
 * When a handler fails in that pass, the whole batch is rolled back
 * (*retry set) and ev_consume_once runs it again `careful`ly, each event
 * in its savepoint, so that the failure is counted and the events before
 * it commit. Handlers are written for redelivery anyway (at-least-once),
 * so running the ones before the failure twice changes nothing.
 */
static rpc_status consume_batch(ev_consumer *c, int careful, unsigned *handled, int *retry)
{
	unsigned done = 0;
	*retry = 0;
	if (handled != NULL)
		*handled = 0;
	db_conn *own, *src = NULL;
	rpc_status st = db_acquire(c->o.own, 30000, &own);
	if (st != RPC_STATUS_OK)
		return st;
	char sql[1024], moved_txid[32] = "", moved_seq[32] = "";
	PGresult *cur = NULL, *rows = NULL, *state = NULL;
	/* "{uuid,uuid,...}": the batch's ids, then the ones applied */
	size_t id_cap = (size_t)c->o.batch * 40 + 3, ids_len = 1, ok_len = 1;
	char *ids = malloc(id_cap), *ok_ids = malloc(id_cap);
	if (ids == NULL || ok_ids == NULL) {
		st = RPC_STATUS_RESOURCE_EXHAUSTED;
		goto out;
	}
	ids[0] = ok_ids[0] = '{';
	if ((st = db_exec(own, NULL, "BEGIN", 0, NULL, NULL)) != RPC_STATUS_OK)
		goto out;
	snprintf(sql, sizeof(sql),
	         "SELECT last_txid::text, last_seq FROM %s.event_cursors"
	         " WHERE consumer = $1 AND source = $2 FOR UPDATE SKIP LOCKED",
	         c->own);
	const char *cp[2] = {c->name, c->o.source_schema};
	if ((st = db_exec(own, NULL, sql, 2, cp, &cur)) != RPC_STATUS_OK)
		goto out;
	if (PQntuples(cur) == 0) /* another instance is at work */
		goto commit;
	char last_txid[32], last_seq[32];
	snprintf(last_txid, sizeof(last_txid), "%s", PQgetvalue(cur, 0, 0));
	snprintf(last_seq, sizeof(last_seq), "%s", PQgetvalue(cur, 0, 1));

	int same_db = c->o.source == c->o.own;
	if (same_db) {
		src = own;
	} else if ((st = db_acquire(c->o.source, 30000, &src)) != RPC_STATUS_OK) {
		src = NULL;
		goto out;
	}
	char batch[16];
	snprintf(batch, sizeof(batch), "%u", c->o.batch);
	/* Only transactions older than every running one: nothing can commit
	 * behind this point later. The order is the xid8 column's, named
	 * through the table: a bare "txid" in ORDER BY would be the output
	 * column txid::text, which sorts "10000" before "9999" and made the
	 * cursor jump over events. */
	snprintf(sql, sizeof(sql),
	         "SELECT o.id, o.seq, o.type, o.aggregate_id, o.payload, o.txid::text AS txid_text,"
	         " " EV_TIME_SQL " FROM %s.outbox o"
	         " WHERE (o.txid, o.seq) > ($1::xid8, $2::bigint)"
	         " AND o.txid < pg_snapshot_xmin(pg_current_snapshot())"
	         " ORDER BY o.txid, o.seq LIMIT $3::int",
	         c->src);
	const char *rp[3] = {last_txid, last_seq, batch};
	if ((st = db_exec(src, NULL, sql, 3, rp, &rows)) != RPC_STATUS_OK)
		goto out;
	int n_rows = PQntuples(rows), n_wanted = 0;
	if (n_rows == 0) {
		/* Committed events past the cursor that an older transaction
		 * still running holds back: their NOTIFY has come and gone, and
		 * that transaction may end without one, so ev_wait() looks again
		 * soon instead of sleeping its whole timeout. */
		int64_t held = 0;
		snprintf(sql, sizeof(sql),
		         "SELECT count(*) FROM (SELECT 1 FROM %s.outbox o"
		         " WHERE (o.txid, o.seq) > ($1::xid8, $2::bigint) LIMIT 1) h",
		         c->src);
		if ((st = db_exec_int64(src, NULL, sql, 2, rp, &held)) != RPC_STATUS_OK)
			goto out;
		c->held_back = held > 0 ? c->held_back + 1 : 0;
	} else {
		c->held_back = 0;
	}
	for (int i = 0; i < n_rows; i++)
		if (wanted(c, PQgetvalue(rows, i, 2))) {
			if (add_id(ids, id_cap, &ids_len, PQgetvalue(rows, i, 0)) != 0) {
				st = RPC_STATUS_INTERNAL;
				goto out;
			}
			n_wanted++;
		}
	ids[ids_len++] = '}';
	ids[ids_len] = '\0';
	if (n_wanted > 0) {
		/* which were processed already (a replay, or a crash after commit
		 * elsewhere), and which wait for a retry */
		snprintf(sql, sizeof(sql),
		         "SELECT e.id::text,"
		         " EXISTS (SELECT 1 FROM %s.processed_events p"
		         "  WHERE p.consumer = $1 AND p.event_id = e.id),"
		         " coalesce(a.attempts, 0), coalesce(a.next_attempt_at > now(), false)"
		         " FROM unnest($2::uuid[]) AS e(id)"
		         " LEFT JOIN %s.event_attempts a ON a.consumer = $1 AND a.event_id = e.id",
		         c->own, c->own);
		const char *sp[2] = {c->name, ids};
		if ((st = db_exec(own, NULL, sql, 2, sp, &state)) != RPC_STATUS_OK)
			goto out;
	}

	for (int i = 0; i < n_rows; i++) {
		ev_event ev = {0};
		ev.id = PQgetvalue(rows, i, 0);
		ev.seq = strtoll(PQgetvalue(rows, i, 1), NULL, 10);
		ev.type = PQgetvalue(rows, i, 2);
		ev.aggregate_id = PQgetvalue(rows, i, 3);
		const char *payload_text = PQgetvalue(rows, i, 4);
		const char *txid = PQgetvalue(rows, i, 5);
		ev.occurred_at = PQgetvalue(rows, i, 6);
		int s = -1; /* the event's row in `state` */
		for (int k = 0; state != NULL && k < PQntuples(state) && s < 0; k++)
			if (strcmp(PQgetvalue(state, k, 0), ev.id) == 0)
				s = k;
		if (s < 0 && wanted(c, ev.type)) { /* never: the lookup had every id */
			st = RPC_STATUS_INTERNAL;
			goto out;
		}
		if (s >= 0 && strcmp(PQgetvalue(state, s, 1), "f") == 0) {
			int tried = atoi(PQgetvalue(state, s, 2));
			if (strcmp(PQgetvalue(state, s, 3), "t") == 0)
				break; /* keep order: nothing behind it runs before its retry */
			ev.attempt = tried + 1;
			size_t blen = 0;
			unsigned char *bytes =
			    PQunescapeBytea((const unsigned char *)payload_text, &blen);
			if (bytes == NULL) {
				st = RPC_STATUS_RESOURCE_EXHAUSTED;
				goto out;
			}
			ev.payload = bytes;
			ev.payload_len = blen;
			rpc_status hst =
			    careful ? apply_one(c, own, &ev) : c->o.handler(own, &ev, c->o.arg);
			PQfreemem(bytes);
			if (hst != RPC_STATUS_OK && !careful) {
				*retry = 1; /* roll all back, then again with savepoints */
				done = 0;
				st = db_exec(own, NULL, "ROLLBACK", 0, NULL, NULL);
				goto out;
			}
			if (hst != RPC_STATUS_OK) {
				int parked = record_failure(c, own, &ev, hst, payload_text, &st);
				if (parked < 0)
					goto out;
				if (parked == 0)
					break;
			} else {
				if (add_id(ok_ids, id_cap, &ok_len, ev.id) != 0) {
					st = RPC_STATUS_INTERNAL;
					goto out;
				}
				snprintf(
				    sql, sizeof(sql),
				    "DELETE FROM %s.event_attempts WHERE consumer = $1 AND event_id = $2",
				    c->own);
				const char *pp[2] = {c->name, ev.id};
				if (tried > 0 &&
				    (st = db_exec(own, NULL, sql, 2, pp, NULL)) != RPC_STATUS_OK)
					goto out;
			}
		}
		snprintf(moved_txid, sizeof(moved_txid), "%s", txid);
		snprintf(moved_seq, sizeof(moved_seq), "%lld", (long long)ev.seq);
		done++;
	}
	if (ok_len > 1) { /* the applied events, processed from now on */
		ok_ids[ok_len++] = '}';
		ok_ids[ok_len] = '\0';
		snprintf(sql, sizeof(sql),
		         "INSERT INTO %s.processed_events (consumer, event_id)"
		         " SELECT $1, unnest($2::uuid[])",
		         c->own);
		const char *pp[2] = {c->name, ok_ids};
		if ((st = db_exec(own, NULL, sql, 2, pp, NULL)) != RPC_STATUS_OK)
			goto out;
	}
	if (moved_txid[0] != '\0') {
		snprintf(sql, sizeof(sql),
		         "UPDATE %s.event_cursors SET last_txid = $3::xid8, last_seq = $4::bigint"
		         " WHERE consumer = $1 AND source = $2",
		         c->own);
		const char *up[4] = {c->name, c->o.source_schema, moved_txid, moved_seq};
		PGresult *moved;
		if ((st = db_exec(own, NULL, sql, 4, up, &moved)) != RPC_STATUS_OK)
			goto out;
		int one = strcmp(PQcmdTuples(moved), "1") == 0;
		PQclear(moved);
		if (!one) { /* the cursor row vanished: never apply without one */
			st = RPC_STATUS_INTERNAL;
			goto out;
		}
	}
commit:
	st = db_exec(own, NULL, "COMMIT", 0, NULL, NULL);
	if (st == RPC_STATUS_OK && moved_txid[0] != '\0') {
		rpc_status rst = register_reader(c, src, moved_txid, moved_seq, 0);
		if (rst != RPC_STATUS_OK)
			log_write(LOG_WARN, NULL, "events.reader",
			          "%s: could not record its position in %s.outbox_readers: %s",
			          c->name, c->o.source_schema, rpc_status_name(rst));
	}
out:
	free(ids);
	free(ok_ids);
	PQclear(cur);
	PQclear(rows);
	PQclear(state);
	if (st != RPC_STATUS_OK)
		done = 0; /* rolled back by the release */
	if (src != NULL && src != own)
		db_release(c->o.source, src);
	db_release(c->o.own, own);
	if (handled != NULL)
		*handled = done;
	return st;
}

rpc_status ev_consume_once(ev_consumer *c, unsigned *handled)
{
	int retry = 0;
	rpc_status st = consume_batch(c, 0, handled, &retry);
	if (st == RPC_STATUS_OK && retry)
		st = consume_batch(c, 1, handled, &retry);
	return st;
}

unsigned ev_consumer_held_back(const ev_consumer *c)
{
	return c->held_back;
}

const char *ev_consumer_name(const ev_consumer *c)
{
	return c->name;
}

rpc_status ev_consumer_backlog(ev_consumer *c, long *out)
{
	*out = 0;
	db_conn *own, *src;
	rpc_status st = db_acquire(c->o.own, 5000, &own);
	if (st != RPC_STATUS_OK)
		return st;
	char sql[512];
	snprintf(
	    sql, sizeof(sql),
	    "SELECT last_txid::text, last_seq FROM %s.event_cursors WHERE consumer = $1 AND source = $2",
	    c->own);
	const char *p[2] = {c->name, c->o.source_schema};
	PGresult *cur;
	st = db_exec(own, NULL, sql, 2, p, &cur);
	char txid[32] = "0", seq[32] = "0";
	if (st == RPC_STATUS_OK && PQntuples(cur) == 1) {
		snprintf(txid, sizeof(txid), "%s", PQgetvalue(cur, 0, 0));
		snprintf(seq, sizeof(seq), "%s", PQgetvalue(cur, 0, 1));
	}
	if (st == RPC_STATUS_OK)
		PQclear(cur);
	db_release(c->o.own, own);
	if (st != RPC_STATUS_OK)
		return st;
	if ((st = db_acquire(c->o.source, 5000, &src)) != RPC_STATUS_OK)
		return st;
	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM %s.outbox WHERE (txid, seq) > ($1::xid8, $2::bigint)",
	         c->src);
	const char *q[2] = {txid, seq};
	int64_t n;
	if ((st = db_exec_int64(src, NULL, sql, 2, q, &n)) == RPC_STATUS_OK)
		*out = (long)n;
	db_release(c->o.source, src);
	return st;
}

rpc_status ev_dead_letter_count(db_pool *pool, const char *own_schema, const char *name, long *out)
{
	*out = 0;
	if (!db_identifier_valid(own_schema) || name == NULL)
		return RPC_STATUS_INVALID_ARGUMENT;
	db_conn *c;
	rpc_status st = db_acquire(pool, 30000, &c);
	if (st != RPC_STATUS_OK)
		return st;
	char sql[256];
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM \"%s\".dead_letters WHERE consumer = $1",
	         own_schema);
	const char *p[1] = {name};
	int64_t n;
	if ((st = db_exec_int64(c, NULL, sql, 1, p, &n)) == RPC_STATUS_OK)
		*out = (long)n;
	db_release(pool, c);
	return st;
}

rpc_status ev_replay_dead_letter(ev_consumer *c, const char *event_id)
{
	if (c == NULL || event_id == NULL)
		return RPC_STATUS_INVALID_ARGUMENT;
	db_conn *own;
	rpc_status st = db_acquire(c->o.own, 30000, &own);
	if (st != RPC_STATUS_OK)
		return st;
	char sql[512];
	PGresult *r = NULL;
	unsigned char *bytes = NULL;
	const char *p[2] = {c->name, event_id};
	if ((st = db_exec(own, NULL, "BEGIN", 0, NULL, NULL)) != RPC_STATUS_OK)
		goto out;
	snprintf(sql, sizeof(sql),
	         "SELECT event_id, seq, type, aggregate_id, payload, coalesce(occurred_at, '')"
	         " FROM %s.dead_letters"
	         " WHERE consumer = $1 AND event_id::text = $2 FOR UPDATE",
	         c->own);
	if ((st = db_exec(own, NULL, sql, 2, p, &r)) != RPC_STATUS_OK)
		goto out;
	if (PQntuples(r) == 0) {
		st = RPC_STATUS_NOT_FOUND;
		goto out;
	}
	size_t blen = 0;
	bytes = PQunescapeBytea((const unsigned char *)PQgetvalue(r, 0, 4), &blen);
	if (bytes == NULL) {
		st = RPC_STATUS_RESOURCE_EXHAUSTED;
		goto out;
	}
	ev_event ev = {.id = PQgetvalue(r, 0, 0),
	               .seq = strtoll(PQgetvalue(r, 0, 1), NULL, 10),
	               .type = PQgetvalue(r, 0, 2),
	               .aggregate_id = PQgetvalue(r, 0, 3),
	               .payload = bytes,
	               .payload_len = blen,
	               .attempt = 1,
	               .occurred_at = PQgetvalue(r, 0, 5)};
	if ((st = apply_one(c, own, &ev)) != RPC_STATUS_OK)
		goto out;
	snprintf(sql, sizeof(sql),
	         "INSERT INTO %s.processed_events (consumer, event_id) VALUES ($1, $2::uuid)"
	         " ON CONFLICT DO NOTHING",
	         c->own);
	if ((st = db_exec(own, NULL, sql, 2, p, NULL)) != RPC_STATUS_OK)
		goto out;
	snprintf(sql, sizeof(sql),
	         "DELETE FROM %s.dead_letters WHERE consumer = $1 AND event_id::text = $2", c->own);
	if ((st = db_exec(own, NULL, sql, 2, p, NULL)) == RPC_STATUS_OK)
		st = db_exec(own, NULL, "COMMIT", 0, NULL, NULL);
out:
	if (bytes != NULL)
		PQfreemem(bytes);
	PQclear(r);
	db_release(c->o.own, own); /* rolls back what did not commit */
	return st;
}

rpc_status ev_wait(ev_consumer *c, uint32_t timeout_ms)
{
	/* events held back behind an older transaction: look again after
	 * 2, 4, 8 ... 512 ms rather than wait for a NOTIFY that may not come */
	if (c->held_back > 0) {
		unsigned shift = c->held_back < 9 ? c->held_back : 9;
		uint32_t soon = 1u << shift;
		if (soon < timeout_ms)
			timeout_ms = soon;
	}
	if (c->listen == NULL || PQstatus(c->listen) != CONNECTION_OK) {
		if (c->listen != NULL)
			PQfinish(c->listen);
		c->listen = db_connect(db_pool_url(c->o.source));
		PGresult *r = c->listen && PQstatus(c->listen) == CONNECTION_OK
		                  ? PQexec(c->listen, "LISTEN " EV_CHANNEL)
		                  : NULL;
		int ok = r != NULL && PQresultStatus(r) == PGRES_COMMAND_OK;
		PQclear(r);
		if (!ok) {
			if (c->listen != NULL)
				PQfinish(c->listen);
			c->listen = NULL;
			return RPC_STATUS_UNAVAILABLE;
		}
	}
	struct pollfd pfd = {.fd = PQsocket(c->listen), .events = POLLIN};
	if (pfd.fd < 0)
		return RPC_STATUS_UNAVAILABLE;
	int n = poll(&pfd, 1, (int)(timeout_ms > 60000 ? 60000 : timeout_ms));
	if (n > 0) {
		if (PQconsumeInput(c->listen) == 0)
			return RPC_STATUS_UNAVAILABLE;
		PGnotify *note;
		while ((note = PQnotifies(c->listen)) != NULL)
			PQfreemem(note);
	}
	return RPC_STATUS_OK;
}

rpc_status ev_prune_outbox(db_pool *pool, const char *schema, uint32_t keep_s, long *deleted)
{
	if (deleted != NULL)
		*deleted = 0;
	if (pool == NULL || !db_identifier_valid(schema))
		return RPC_STATUS_INVALID_ARGUMENT;
	char q[80], sql[1024];
	quote(q, sizeof(q), schema);
	/* With no reader the lowest position is NULL and nothing qualifies. */
	snprintf(sql, sizeof(sql),
	         "DELETE FROM %s.outbox WHERE id IN (SELECT o.id FROM %s.outbox o"
	         " WHERE o.created_at < now() - $1::int * interval '1 second'"
	         " AND (o.txid, o.seq) <= (SELECT r.last_txid, r.last_seq FROM %s.outbox_readers r"
	         " ORDER BY r.last_txid, r.last_seq LIMIT 1)"
	         " ORDER BY o.txid, o.seq LIMIT $2::int)",
	         q, q, q);
	return db_purge(pool, sql, keep_s, deleted);
}

rpc_status ev_prune_processed(db_pool *pool, const char *own_schema, uint32_t keep_s, long *deleted)
{
	if (deleted != NULL)
		*deleted = 0;
	if (pool == NULL || !db_identifier_valid(own_schema))
		return RPC_STATUS_INVALID_ARGUMENT;
	char q[80], sql[512];
	quote(q, sizeof(q), own_schema);
	snprintf(
	    sql, sizeof(sql),
	    "DELETE FROM %s.processed_events WHERE ctid IN (SELECT ctid FROM %s.processed_events"
	    " WHERE processed_at < now() - $1::int * interval '1 second' LIMIT $2::int)",
	    q, q);
	return db_purge(pool, sql, keep_s, deleted);
}

rpc_status ev_consumer_rewind(ev_consumer *c)
{
	if (c == NULL)
		return RPC_STATUS_INVALID_ARGUMENT;
	db_conn *own;
	rpc_status st = db_acquire(c->o.own, 30000, &own);
	if (st != RPC_STATUS_OK)
		return st;
	char sql[512];
	const char *p[2] = {c->name, c->o.source_schema};
	/* the reader's row first: from then on nothing it will read is pruned */
	st = register_reader(c, c->o.source == c->o.own ? own : NULL, "0", "0", 1);
	if (st == RPC_STATUS_OK)
		st = db_exec(own, NULL, "BEGIN", 0, NULL, NULL);
	snprintf(sql, sizeof(sql),
	         "UPDATE %s.event_cursors SET last_txid = '0', last_seq = 0"
	         " WHERE consumer = $1 AND source = $2",
	         c->own);
	if (st == RPC_STATUS_OK)
		st = db_exec(own, NULL, sql, 2, p, NULL);
	snprintf(sql, sizeof(sql), "DELETE FROM %s.processed_events WHERE consumer = $1", c->own);
	if (st == RPC_STATUS_OK)
		st = db_exec(own, NULL, sql, 1, p, NULL);
	snprintf(sql, sizeof(sql), "DELETE FROM %s.event_attempts WHERE consumer = $1", c->own);
	if (st == RPC_STATUS_OK)
		st = db_exec(own, NULL, sql, 1, p, NULL);
	if (st == RPC_STATUS_OK)
		st = db_exec(own, NULL, "COMMIT", 0, NULL, NULL);
	db_release(c->o.own, own); /* rolls back what did not commit */
	return st;
}
