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
};

static void quote(char *out, size_t cap, const char *schema)
{
	snprintf(out, cap, "\"%s\"", schema);
}

/* Run sql[0..n); sql[0] creates `schema` and is skipped when it exists: a
 * service's role may create tables in its schema but not schemas. */
static rpc_status exec_ddl(db_pool *pool, const char *schema, const char *const *sql, size_t n)
{
	db_conn *c;
	rpc_status st = db_acquire(pool, 30000, &c);
	if (st != RPC_STATUS_OK)
		return st;
	const char *p[1] = {schema};
	PGresult *r;
	size_t first = 0;
	if ((st = db_exec(c, NULL, "SELECT 1 FROM pg_namespace WHERE nspname = $1", 1, p, &r)) ==
	    RPC_STATUS_OK) {
		first = PQntuples(r) > 0;
		PQclear(r);
	}
	for (size_t i = first; i < n && st == RPC_STATUS_OK; i++)
		st = db_exec(c, NULL, sql[i], 0, NULL, NULL);
	db_release(pool, c);
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
	return exec_ddl(pool, schema, sql, 4);
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
	snprintf(
	    sql, sizeof(sql),
	    "INSERT INTO %s.outbox (id, type, aggregate_id, payload) VALUES ($1, $2, $3, $4::bytea)",
	    q);
	const char *p[4] = {id, type, aggregate_id ? aggregate_id : "", text};
	st = db_exec(conn, NULL, sql, 4, p, NULL);
	free(text);
	/* delivered by PostgreSQL when (and only if) the transaction commits */
	const char *ch[1] = {schema};
	if (st == RPC_STATUS_OK)
		st = db_exec(conn, NULL, "SELECT pg_notify('" EV_CHANNEL "', $1)", 1, ch, NULL);
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
	rpc_status st = exec_ddl(opts->own, opts->own_schema, ddl, 6);
	if (st == RPC_STATUS_OK) /* the producer's outbox and its readers' table */
		st = ev_outbox_setup(opts->source, opts->source_schema);
	if (st == RPC_STATUS_OK) {
		db_conn *conn;
		if ((st = db_acquire(opts->own, 30000, &conn)) == RPC_STATUS_OK) {
			char sql[256];
			snprintf(sql, sizeof(sql),
			         "INSERT INTO %s.event_cursors (consumer, source) VALUES ($1, $2)"
			         " ON CONFLICT DO NOTHING",
			         c->own);
			const char *p[2] = {c->name, opts->source_schema};
			st = db_exec(conn, NULL, sql, 2, p, NULL);
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

/* Run the handler on one event inside a savepoint. */
static rpc_status apply_one(ev_consumer *c, db_conn *own, const ev_event *ev)
{
	rpc_status st = db_exec(own, NULL, "SAVEPOINT ev", 0, NULL, NULL);
	if (st != RPC_STATUS_OK)
		return st;
	rpc_status hst = c->o.handler(own, ev, c->o.arg);
	if (hst == RPC_STATUS_OK) {
		char sql[256];
		snprintf(sql, sizeof(sql),
		         "INSERT INTO %s.processed_events (consumer, event_id) VALUES ($1, $2)",
		         c->own);
		const char *p[2] = {c->name, ev->id};
		st = db_exec(own, NULL, "RELEASE SAVEPOINT ev", 0, NULL, NULL);
		if (st == RPC_STATUS_OK)
			st = db_exec(own, NULL, sql, 2, p, NULL); /* unnamed: the schema varies */
		return st == RPC_STATUS_OK ? RPC_STATUS_OK : st;
	}
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

rpc_status ev_consume_once(ev_consumer *c, unsigned *handled)
{
	unsigned done = 0;
	if (handled != NULL)
		*handled = 0;
	db_conn *own, *src = NULL;
	rpc_status st = db_acquire(c->o.own, 30000, &own);
	if (st != RPC_STATUS_OK)
		return st;
	char sql[1024], moved_txid[32] = "", moved_seq[32] = "";
	PGresult *cur = NULL, *rows = NULL;
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
	 * behind this point later. */
	snprintf(sql, sizeof(sql),
	         "SELECT id, seq, type, aggregate_id, payload, txid::text, " EV_TIME_SQL
	         " FROM %s.outbox"
	         " WHERE (txid, seq) > ($1::xid8, $2::bigint)"
	         " AND txid < pg_snapshot_xmin(pg_current_snapshot())"
	         " ORDER BY txid, seq LIMIT $3::int",
	         c->src);
	const char *rp[3] = {last_txid, last_seq, batch};
	if ((st = db_exec(src, NULL, sql, 3, rp, &rows)) != RPC_STATUS_OK)
		goto out;

	for (int i = 0; i < PQntuples(rows); i++) {
		ev_event ev = {0};
		ev.id = PQgetvalue(rows, i, 0);
		ev.seq = strtoll(PQgetvalue(rows, i, 1), NULL, 10);
		ev.type = PQgetvalue(rows, i, 2);
		ev.aggregate_id = PQgetvalue(rows, i, 3);
		const char *payload_text = PQgetvalue(rows, i, 4);
		const char *txid = PQgetvalue(rows, i, 5);
		ev.occurred_at = PQgetvalue(rows, i, 6);

		/* processed already (a replay, or a crash after commit elsewhere)? */
		snprintf(sql, sizeof(sql),
		         "SELECT 1 FROM %s.processed_events WHERE consumer = $1 AND event_id = $2",
		         c->own);
		const char *pp[2] = {c->name, ev.id};
		PGresult *seen;
		if ((st = db_exec(own, NULL, sql, 2, pp, &seen)) != RPC_STATUS_OK)
			goto out;
		int already = PQntuples(seen) > 0;
		PQclear(seen);
		if (!already) {
			snprintf(sql, sizeof(sql),
			         "SELECT attempts, next_attempt_at > now() FROM %s.event_attempts"
			         " WHERE consumer = $1 AND event_id = $2",
			         c->own);
			PGresult *att;
			if ((st = db_exec(own, NULL, sql, 2, pp, &att)) != RPC_STATUS_OK)
				goto out;
			int tried = PQntuples(att) > 0 ? atoi(PQgetvalue(att, 0, 0)) : 0;
			int waiting = PQntuples(att) > 0 && strcmp(PQgetvalue(att, 0, 1), "t") == 0;
			PQclear(att);
			if (waiting)
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
			rpc_status hst = apply_one(c, own, &ev);
			PQfreemem(bytes);
			if (hst != RPC_STATUS_OK) {
				int parked = record_failure(c, own, &ev, hst, payload_text, &st);
				if (parked < 0)
					goto out;
				if (parked == 0)
					break;
			} else {
				snprintf(
				    sql, sizeof(sql),
				    "DELETE FROM %s.event_attempts WHERE consumer = $1 AND event_id = $2",
				    c->own);
				if (tried > 0 &&
				    (st = db_exec(own, NULL, sql, 2, pp, NULL)) != RPC_STATUS_OK)
					goto out;
			}
		}
		snprintf(sql, sizeof(sql),
		         "UPDATE %s.event_cursors SET last_txid = $3::xid8, last_seq = $4::bigint"
		         " WHERE consumer = $1 AND source = $2",
		         c->own);
		char seq[32];
		snprintf(seq, sizeof(seq), "%lld", (long long)ev.seq);
		const char *up[4] = {c->name, c->o.source_schema, txid, seq};
		PGresult *moved;
		if ((st = db_exec(own, NULL, sql, 4, up, &moved)) != RPC_STATUS_OK)
			goto out;
		int one = strcmp(PQcmdTuples(moved), "1") == 0;
		PQclear(moved);
		if (!one) { /* the cursor row vanished: never apply without one */
			st = RPC_STATUS_INTERNAL;
			goto out;
		}
		snprintf(moved_txid, sizeof(moved_txid), "%s", txid);
		snprintf(moved_seq, sizeof(moved_seq), "%s", seq);
		done++;
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
	PQclear(cur);
	PQclear(rows);
	if (st != RPC_STATUS_OK)
		done = 0; /* rolled back by the release */
	if (src != NULL && src != own)
		db_release(c->o.source, src);
	db_release(c->o.own, own);
	if (handled != NULL)
		*handled = done;
	return st;
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
	PGresult *r;
	if ((st = db_exec(src, NULL, sql, 2, q, &r)) == RPC_STATUS_OK) {
		*out = atol(PQgetvalue(r, 0, 0));
		PQclear(r);
	}
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
	PGresult *r;
	if ((st = db_exec(c, NULL, sql, 1, p, &r)) == RPC_STATUS_OK) {
		*out = atol(PQgetvalue(r, 0, 0));
		PQclear(r);
	}
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
