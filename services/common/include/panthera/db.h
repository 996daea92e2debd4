/*
 * db.h - PostgreSQL for Panthera's services: a connection pool over libpq,
 * parameterized statements prepared once per connection, transactions that
 * retry on serialization failures, and versioned migrations.
 *
 * Every function returns an rpc_status, so a handler can hand it straight
 * back to its caller: a connection the server dropped is UNAVAILABLE (the
 * pool reconnects on the next acquire, so calls fail only while the server
 * is away), a unique violation is ALREADY_EXISTS, a serialization failure
 * or deadlock ABORTED, a statement timeout DEADLINE_EXCEEDED, a check or
 * foreign-key violation FAILED_PRECONDITION, anything else INTERNAL. SQL
 * text never reaches a status message; it goes to the log.
 *
 * SQL takes values only as parameters ($1, $2, ...): there is no function
 * here that splices a value into SQL text.
 *
 * Thread-safety: a db_pool is safe to share between threads; a db_conn
 * belongs to the thread that acquired it until it is released.
 */
#ifndef PANTHERA_DB_H
#define PANTHERA_DB_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "panthera/rpc_status.h"

typedef struct db_pool db_pool;
typedef struct db_conn db_conn;

typedef struct db_pool_opts {
	/* A libpq connection string or URL (postgresql://...). Required. */
	const char *url;
	/* Most connections at once. 0: 8. */
	unsigned size;
	/* statement_timeout set on every connection, ms. 0: 30000. */
	uint32_t statement_timeout_ms;
	/* search_path of every connection (a service's own schema), or NULL.
	 * Must be a plain identifier: [a-z_][a-z0-9_]*, at most 63 bytes. */
	const char *schema;
	/* Role every connection switches to (SET ROLE), so a service reaches
	 * only what its role was granted (see db_grant_service_role), or NULL
	 * to keep the URL's user. A plain identifier. */
	const char *role;
} db_pool_opts;

/*
 * Open a pool and one connection, to fail fast on a wrong URL. On error
 * *out is NULL: INVALID_ARGUMENT for a bad option, UNAVAILABLE when the
 * server cannot be reached (the message of libpq goes to the log).
 */
rpc_status db_pool_open(db_pool **out, const db_pool_opts *opts);

/* Close every connection and free the pool. All connections must have been
 * released. NULL is harmless. */
void db_pool_close(db_pool *pool);

/*
 * Take a connection, waiting at most `timeout_ms` for one to be free
 * (DEADLINE_EXCEEDED after that). A connection found broken is replaced;
 * UNAVAILABLE when the server cannot be reached.
 */
rpc_status db_acquire(db_pool *pool, uint32_t timeout_ms, db_conn **out);

/* Give a connection back. A connection left inside a transaction is rolled
 * back; a broken one is closed and replaced later. NULL is harmless. */
void db_release(db_pool *pool, db_conn *conn);

/*
 * Run `sql` with `n` text parameters (NULL entries are SQL NULL). With a
 * `name`, the statement is prepared on first use on each connection and
 * executed by name afterwards; `name` must then always go with the same
 * SQL. On success *res (if res is not NULL) holds the result, to PQclear();
 * on error *res is NULL.
 */
rpc_status db_exec(db_conn *conn, const char *name, const char *sql, int n,
                   const char *const *params, PGresult **res);

/*
 * db_exec() for a statement that returns at most one row (a lookup by key,
 * an UPDATE or DELETE ... RETURNING): NOT_FOUND when it returns none. On OK
 * *row holds the result, to PQclear(); on any other status *row is NULL.
 */
rpc_status db_exec_row(db_conn *conn, const char *name, const char *sql, int n,
                       const char *const *params, PGresult **row);

/*
 * db_exec() for a statement whose answer is one integer, the first column
 * of its first row (a count(*), a RETURNING of one number): *out gets it.
 * INTERNAL (logged) when there is no row, or that value is NULL or not a
 * decimal integer that fits. *out is left alone on any error.
 */
rpc_status db_exec_int64(db_conn *conn, const char *name, const char *sql, int n,
                         const char *const *params, int64_t *out);

/*
 * Delete what is past its retention, in batches: run `sql`, a DELETE of at
 * most $2 rows older than $1 seconds (its two parameters, as text: keep_s
 * and DB_PURGE_BATCH), again while batches come back full, at most
 * DB_PURGE_ROUNDS times (the rest waits for the next call). Each batch is
 * its own transaction, so a large backlog never holds long locks.
 * *deleted (may be NULL) gets the rows removed by the batches that ran,
 * also on error. The purges of the services' sweeps and of the event log
 * use it; `sql` must take the bound as a LIMIT inside its DELETE, e.g.
 *   DELETE FROM t WHERE id IN (SELECT id FROM t
 *     WHERE created_at < now() - $1::int * interval '1 second' LIMIT $2::int)
 */
#define DB_PURGE_BATCH  5000
#define DB_PURGE_ROUNDS 20
rpc_status db_purge(db_pool *pool, const char *sql, uint32_t keep_s, long *deleted);

/* 1 when `s` may name a schema: [a-z_][a-z0-9_]*, 1..63 bytes. Such a name
 * is safe inside double quotes in SQL text. */
int db_identifier_valid(const char *s);

/* Connections of the pool: its size, and how many are taken right now. */
void db_pool_stats(db_pool *pool, unsigned *size, unsigned *in_use);

/* The URL the pool connects with (for a LISTEN connection of its own). */
const char *db_pool_url(const db_pool *pool);

/*
 * PQconnectdb(url) with a connect timeout (DB_CONNECT_TIMEOUT_S seconds,
 * unless the URL sets its own), so an unreachable server fails a call
 * instead of hanging it. NULL only when out of memory; check PQstatus.
 */
#define DB_CONNECT_TIMEOUT_S "5"
PGconn *db_connect(const char *url);

/* The SQLSTATE of the last failed db_exec on `conn` ("" when none). */
const char *db_last_sqlstate(const db_conn *conn);

/*
 * Run fn(conn, arg) inside a transaction on a connection of the pool,
 * committing when it returns OK and rolling back otherwise. `flags`:
 * DB_TX_SERIALIZABLE makes the transaction SERIALIZABLE; with it or with
 * DB_TX_RETRY, the whole transaction is run again, up to 5 times with a
 * short random backoff, when PostgreSQL reports a serialization failure
 * (40001) or a deadlock (40P01): fn must then be safe to run again (reset
 * what it accumulates in `arg` at its start). Without either, such an
 * error reaches the caller as ABORTED. `timeout_ms` bounds the wait for a
 * connection.
 */
#define DB_TX_SERIALIZABLE 1
#define DB_TX_RETRY        2
/*
 * DB_TX_READ: fn only reads, one statement, or several that need no common
 * snapshot: it runs on the connection without BEGIN and COMMIT, two round
 * trips fewer. Under READ COMMITTED (the default) each statement takes its
 * own snapshot inside a transaction too, so a read sees nothing different.
 * Not with the other flags; fn must not write, lock or SET LOCAL.
 */
#define DB_TX_READ 4
typedef rpc_status (*db_tx_fn)(db_conn *conn, void *arg);
rpc_status db_transaction(db_pool *pool, int flags, uint32_t timeout_ms, db_tx_fn fn, void *arg);

/*
 * Make `role` (created NOLOGIN when missing) the role of a service whose
 * tables live in `schema`: usage and create on the schema, read and write on
 * its tables and sequences, and membership for the pool's own user so that
 * it may SET ROLE to it. Run with a pool of a user allowed to do so (the
 * database owner), after db_migrate. Idempotent. Other schemas stay out of
 * the role's reach: a statement touching them fails PERMISSION_DENIED.
 */
rpc_status db_grant_service_role(db_pool *pool, const char *role, const char *schema);

/*
 * Apply the migrations of directory `dir` to `schema` (created if needed):
 * files named NNN_name.sql, in the order of NNN, each in its own
 * transaction, recorded with its SHA-256 in <schema>.schema_migrations.
 * Safe to run twice and from several processes at once (an advisory lock
 * serialises them). FAILED_PRECONDITION, naming the file, when a file
 * recorded as applied has changed since, or when two files share a number.
 */
rpc_status db_migrate(db_pool *pool, const char *schema, const char *dir);

#endif /* PANTHERA_DB_H */
