/*
 * events.h - the event log of Panthera's services: a transactional outbox
 * on the producer's side, consumers with stored cursors on the other.
 *
 * Producing: ev_publish() inserts the event into <schema>.outbox on the
 * caller's connection, inside the caller's transaction, so the event exists
 * exactly when the state change does; a NOTIFY on channel "panthera_events"
 * (sent by PostgreSQL at commit) wakes consumers.
 *
 * Consuming: a consumer reads the producer's outbox in commit order and
 * applies each event with its handler inside a transaction of its own
 * database that also records the event id as processed and moves its
 * cursor: at-least-once delivery, effectively-once effect. The producer's
 * outbox may live in another database (give the consumer a pool on it):
 * the consumer only reads it; what it writes, it writes in its own.
 *
 * Order: events are read ordered by (transaction id, sequence) and only
 * from transactions older than every transaction still running, so an
 * event committed late never lands behind the cursor.
 *
 * Failure: a handler error rolls its event back; the event is tried again
 * with backoff, and after max_attempts it is parked in <own>.dead_letters
 * (with the error) and the events behind it flow on. ev_replay_dead_letter()
 * runs a parked event again.
 *
 * Thread-safety: ev_publish as the connection it is given; one
 * ev_consumer per thread; several consumers (processes) with the same name
 * may run at once: a row lock on the cursor lets one work at a time.
 */
#ifndef PANTHERA_EVENTS_H
#define PANTHERA_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "panthera/db.h"

/* Create <schema>.outbox if needed (producers call it at start). */
rpc_status ev_outbox_setup(db_pool *pool, const char *schema);

/*
 * Append an event to <schema>.outbox on `conn`, in its current transaction.
 * `type` is the full name of the payload message ("panthera.events.v1.
 * OrderCreated"), `payload` its protobuf bytes. The new event id (a UUID)
 * is written to id_out[37] when id_out is not NULL.
 */
rpc_status ev_publish(db_conn *conn, const char *schema, const char *type, const char *aggregate_id,
                      const uint8_t *payload, size_t payload_len, char *id_out);

typedef struct ev_event {
	const char *id;
	int64_t seq;
	const char *type;
	const char *aggregate_id;
	const uint8_t *payload;
	size_t payload_len;
	int attempt; /* 1 on the first try */
	/* when the producer's transaction wrote it (its start: PostgreSQL's
	 * now()), RFC 3339 UTC: "2026-11-23T10:15:00.123456Z" */
	const char *occurred_at;
} ev_event;

/* Apply one event on `conn` (inside the consumer's transaction). OK commits
 * it; any other status rolls it back and counts an attempt. */
typedef rpc_status (*ev_handler_fn)(db_conn *conn, const ev_event *ev, void *arg);

typedef struct ev_consumer_opts {
	const char *name;          /* the consumer, e.g. "payments.on_order_created" */
	db_pool *source;           /* the producer's database */
	const char *source_schema; /* the producer's schema (its outbox) */
	db_pool *own;              /* the consumer's database (may be `source`) */
	const char *own_schema;    /* where cursors, processed ids, dead letters live */
	ev_handler_fn handler;
	void *arg;
	unsigned batch;        /* events per transaction; 0: 64 */
	unsigned max_attempts; /* before parking; 0: 5 */
	uint32_t backoff_ms;   /* first retry delay, doubling; 0: 100 */
	/* The event types the handler acts on, NULL-terminated; events of
	 * other types only move the cursor (no handler call, no processed
	 * record). NULL: every type goes to the handler. */
	const char *const *types;
	/* A consumer opened for the first time (no cursor yet) starts with
	 * the events of transactions still running or to come, not with what
	 * the outbox already holds: for effects that only make sense fresh,
	 * such as emails. 0: from the beginning (read models rebuild). */
	int start_at_now;
} ev_consumer_opts;

typedef struct ev_consumer ev_consumer;

/* Create the consumer's tables if needed and its cursor. */
rpc_status ev_consumer_open(ev_consumer **out, const ev_consumer_opts *opts);
void ev_consumer_close(ev_consumer *c);

/*
 * Process what is ready: at most one batch. *handled (may be NULL) gets
 * the number of events applied or parked. OK also when another instance
 * holds the cursor (nothing done) or an event is waiting for its backoff.
 */
rpc_status ev_consume_once(ev_consumer *c, unsigned *handled);

/* The consumer's name, as given to ev_consumer_open. */
const char *ev_consumer_name(const ev_consumer *c);

/* Events of the source's outbox past the consumer's cursor (waiting). */
rpc_status ev_consumer_backlog(ev_consumer *c, long *out);

/* Events parked for `name` in <own_schema>.dead_letters. */
rpc_status ev_dead_letter_count(db_pool *own, const char *own_schema, const char *name, long *out);

/* Run a parked event through the consumer's handler again; on success it
 * is recorded as processed and leaves the dead letters. NOT_FOUND when no
 * such parked event. */
rpc_status ev_replay_dead_letter(ev_consumer *c, const char *event_id);

/*
 * Block until a NOTIFY arrives on the source database or `timeout_ms`
 * passes, whichever first (a consumer loop: wait, then consume). The
 * listening connection is opened on first use. When the last
 * ev_consume_once() found committed events held back behind an older
 * transaction still running (whose end sends no NOTIFY when it published
 * nothing), the wait is cut to 2 ms, doubling with each such round up to
 * 512 ms: an order's next step does not sleep a consumer's whole idle
 * timeout.
 */
/* Rounds in a row that found events held back (0: none); for tests. */
unsigned ev_consumer_held_back(const ev_consumer *c);

rpc_status ev_wait(ev_consumer *c, uint32_t timeout_ms);

/*
 * Pruning. The outbox and processed_events grow with traffic; the service
 * binaries' sweeper calls these periodically. Each deletes in batches, each
 * batch its own transaction; *deleted (may be NULL) gets the rows removed.
 *
 * ev_prune_outbox deletes the events of <schema>.outbox older than keep_s
 * seconds that EVERY registered reader has passed. Readers register in
 * <schema>.outbox_readers when they open (ev_consumer_open) and move their
 * row forward after each batch, wherever their own cursor lives, so a
 * consumer in another database pins what it has not read yet. An outbox
 * with no reader is never pruned (a consumer added later can read it from
 * the start). A consumer retired for good must have its row deleted
 * (DELETE FROM <schema>.outbox_readers WHERE consumer = '...') or it pins
 * the outbox forever; its backlog in the metrics shows it.
 *
 * ev_prune_processed deletes processed ids older than keep_s seconds from
 * <own_schema>.processed_events. An id is only looked up for events past
 * the cursor (a redelivery after a crash, or a replay), so keep_s needs to
 * cover just that window; the sweeper uses the outbox retention.
 */
rpc_status ev_prune_outbox(db_pool *pool, const char *schema, uint32_t keep_s, long *deleted);
rpc_status ev_prune_processed(db_pool *pool, const char *own_schema, uint32_t keep_s,
                              long *deleted);

/*
 * Move the consumer back to the start of the source's outbox, forgetting
 * its processed ids and pending retries (a read model rebuilding itself
 * from the log). Its reader row goes back first, so nothing not yet read
 * again is pruned. Dead letters stay.
 */
rpc_status ev_consumer_rewind(ev_consumer *c);

/*
 * Tails: following outboxes from "now" on, in memory, for effects that
 * live only as long as the process, such as dropping a cache's entries
 * when the catalog changes. A tail keeps its position in memory: it
 * writes nothing, has no stored cursor and does not register as an
 * outbox reader, so a process that comes and goes leaves nothing behind
 * and pins nothing. It sees the events of transactions that end after it
 * has started, in the order of ev_consume_once (transaction id, then
 * sequence; only from transactions older than every one still running),
 * each once while the process lives; what was published before it
 * started, it never sees. A lost connection is opened again and reading
 * goes on from the same position (nothing skipped, unless the outbox was
 * pruned past it meanwhile: retention is hours).
 */
typedef struct ev_tail ev_tail;

/* One event of a followed outbox, on the tail's thread. */
typedef void (*ev_tail_fn)(const char *schema, const char *type, const uint8_t *payload, size_t len,
                           void *arg);

typedef struct ev_tail_opts {
	/* The producers' database (a libpq URL) and their schemas, NULL-
	 * terminated; an outbox that does not exist yet is read once it does. */
	const char *url;
	const char *const *schemas;
	/* The types wanted, NULL-terminated; NULL: every type. */
	const char *const *types;
	ev_tail_fn on_event;
	/* Called (on the tail's thread) when the tail could not take its
	 * starting position at start (the database was unreachable) and took
	 * it later: events of the time between may be lost. May be NULL. */
	void (*on_gap)(void *arg);
	void *arg;
	/* Longest wait between two reads when no NOTIFY comes; 0: 1000 ms. */
	uint32_t poll_ms;
} ev_tail_opts;

/*
 * Start a thread that follows the outboxes: it takes its position at once
 * when the database answers (so every change committed after this returns
 * is seen), else keeps trying in the background and calls on_gap once it
 * has. Returns OK, INVALID_ARGUMENT (no URL, schemas, on_event, or a
 * schema that is not a plain identifier, a type with other than letters,
 * digits, "." and "_"), RESOURCE_EXHAUSTED.
 */
rpc_status ev_tail_start(ev_tail **out, const ev_tail_opts *opts);

/* Events delivered so far, and failed reads (for metrics). */
void ev_tail_counts(const ev_tail *t, uint64_t *events, uint64_t *errors);

/* Stop the thread (at most one read in flight is waited for) and free it.
 * NULL is harmless. */
void ev_tail_stop(ev_tail *t);

#endif /* PANTHERA_EVENTS_H */
