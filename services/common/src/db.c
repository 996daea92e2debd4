/*
 * db.c - the PostgreSQL pool, statements, transactions and migrations of
 * Panthera's services; see db.h for the contract.
 *
 * Design notes:
 * - The pool is a fixed array of slots; a slot may hold no connection (never
 *   opened, or dropped after the server went away). Acquire takes a free
 *   slot and (re)connects it outside the lock when needed, so one slow
 *   connect never blocks other threads' acquires and releases.
 * - A connection is marked broken when libpq reports it bad after a failed
 *   statement; release then closes it. The next acquire of that slot
 *   connects again: this is how the pool comes back after a restart of the
 *   server without anyone restarting the service.
 * - Prepared statements are per connection: each slot remembers the names
 *   it has prepared, and forgets them when its connection is replaced.
 */
#include "panthera/db.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "panthera/log.h"

#define DB_DEFAULT_SIZE                 8u
#define DB_DEFAULT_STATEMENT_TIMEOUT_MS 30000u
#define DB_TX_ATTEMPTS                  5
#define DB_MAX_MIGRATION_BYTES          (4u << 20)
#define DB_MAX_MIGRATIONS               1000

struct db_conn {
	db_pool *pool;
	PGconn *pg;
	int broken;
	char **prepared; /* names prepared on this connection */
	size_t n_prepared, cap_prepared;
	char sqlstate[6];
	db_conn *next_free;
};

struct db_pool {
	char *url;
	char *schema;
	char *role;
	uint32_t statement_timeout_ms;
	pthread_mutex_t lock;
	pthread_cond_t freed;
	db_conn *slots;
	size_t size;
	db_conn *free_list;
};

static int schema_valid(const char *s);

/* ---- errors ---- */

static rpc_status status_from_sqlstate(const char *s)
{
	if (s == NULL || strlen(s) != 5)
		return RPC_STATUS_INTERNAL;
	if (strncmp(s, "08", 2) == 0 || strcmp(s, "57P01") == 0 || strcmp(s, "57P02") == 0 ||
	    strcmp(s, "57P03") == 0)
		return RPC_STATUS_UNAVAILABLE;
	if (strcmp(s, "23505") == 0)
		return RPC_STATUS_ALREADY_EXISTS;
	if (strcmp(s, "40001") == 0 || strcmp(s, "40P01") == 0)
		return RPC_STATUS_ABORTED;
	if (strcmp(s, "57014") == 0)
		return RPC_STATUS_DEADLINE_EXCEEDED;
	if (strncmp(s, "23", 2) == 0)
		return RPC_STATUS_FAILED_PRECONDITION;
	if (strncmp(s, "22", 2) == 0)
		return RPC_STATUS_INVALID_ARGUMENT;
	if (strncmp(s, "53", 2) == 0)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	if (strcmp(s, "42501") == 0) /* insufficient_privilege */
		return RPC_STATUS_PERMISSION_DENIED;
	return RPC_STATUS_INTERNAL;
}

int db_identifier_valid(const char *s)
{
	return schema_valid(s);
}

void db_pool_stats(db_pool *p, unsigned *size, unsigned *in_use)
{
	unsigned free_n = 0;
	pthread_mutex_lock(&p->lock);
	for (db_conn *c = p->free_list; c != NULL; c = c->next_free)
		free_n++;
	pthread_mutex_unlock(&p->lock);
	*size = (unsigned)p->size;
	*in_use = (unsigned)p->size - free_n;
}

const char *db_pool_url(const db_pool *pool)
{
	return pool->url;
}

static int schema_valid(const char *s)
{
	if (s == NULL || s[0] == '\0' || strlen(s) > 63 ||
	    !(islower((unsigned char)s[0]) || s[0] == '_'))
		return 0;
	for (const char *p = s; *p; p++) {
		if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '_'))
			return 0;
	}
	return 1;
}

/* ---- connections ---- */

static void conn_forget(db_conn *c)
{
	if (c->pg != NULL)
		PQfinish(c->pg);
	c->pg = NULL;
	c->broken = 0;
	for (size_t i = 0; i < c->n_prepared; i++)
		free(c->prepared[i]);
	c->n_prepared = 0;
}

/* Server notices (NOTICE: relation exists, skipping...) go to the log at
 * debug level instead of libpq's default, raw standard error. */
static void notice_to_log(void *arg, const char *message)
{
	(void)arg;
	log_write(LOG_DEBUG, NULL, "db.notice", "%s", message);
}

PGconn *db_connect(const char *url)
{
	/* ours first: a connect_timeout in the URL, expanded after it, wins */
	static const char *const keys[] = {"connect_timeout", "dbname", NULL};
	const char *values[] = {DB_CONNECT_TIMEOUT_S, url, NULL};
	return PQconnectdbParams(keys, values, 1);
}

/* Connect the slot and set its session options. */
static rpc_status conn_open(db_pool *p, db_conn *c)
{
	conn_forget(c);
	c->pg = db_connect(p->url);
	if (c->pg == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	if (PQstatus(c->pg) != CONNECTION_OK) {
		log_write(LOG_WARN, NULL, "db.connect", "cannot connect: %s",
		          PQerrorMessage(c->pg));
		conn_forget(c);
		return RPC_STATUS_UNAVAILABLE;
	}
	PQsetNoticeProcessor(c->pg, notice_to_log, NULL);
	char timeout[32];
	snprintf(timeout, sizeof(timeout), "%u", (unsigned)p->statement_timeout_ms);
	/* a NULL parameter leaves its setting alone (set_config is strict) */
	const char *params[3] = {timeout, p->schema, p->role};
	PGresult *r = PQexecParams(c->pg,
	                           "SELECT set_config('statement_timeout', $1, false),"
	                           " set_config('search_path', $2, false),"
	                           " set_config('role', $3, false)",
	                           3, NULL, params, NULL, NULL, 0);
	int ok = r != NULL && PQresultStatus(r) == PGRES_TUPLES_OK;
	if (!ok)
		log_write(LOG_WARN, NULL, "db.connect", "session setup failed: %s",
		          PQerrorMessage(c->pg));
	PQclear(r);
	if (!ok) {
		conn_forget(c);
		return RPC_STATUS_UNAVAILABLE;
	}
	return RPC_STATUS_OK;
}

rpc_status db_pool_open(db_pool **out, const db_pool_opts *opts)
{
	*out = NULL;
	if (opts == NULL || opts->url == NULL ||
	    (opts->schema != NULL && !schema_valid(opts->schema)) ||
	    (opts->role != NULL && !schema_valid(opts->role)))
		return RPC_STATUS_INVALID_ARGUMENT;
	db_pool *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	p->size = opts->size ? opts->size : DB_DEFAULT_SIZE;
	p->statement_timeout_ms = opts->statement_timeout_ms ? opts->statement_timeout_ms
	                                                     : DB_DEFAULT_STATEMENT_TIMEOUT_MS;
	p->url = strdup(opts->url);
	p->schema = opts->schema ? strdup(opts->schema) : NULL;
	p->role = opts->role ? strdup(opts->role) : NULL;
	p->slots = calloc(p->size, sizeof(*p->slots));
	if (p->url == NULL || (opts->schema && p->schema == NULL) ||
	    (opts->role && p->role == NULL) || p->slots == NULL) {
		free(p->url);
		free(p->schema);
		free(p->role);
		free(p->slots);
		free(p);
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	}
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->freed, NULL);
	for (size_t i = p->size; i-- > 0;) {
		p->slots[i].pool = p;
		p->slots[i].next_free = p->free_list;
		p->free_list = &p->slots[i];
	}
	/* One connection now, so a wrong URL fails at start, not at first use. */
	rpc_status st = conn_open(p, p->free_list);
	if (st != RPC_STATUS_OK) {
		db_pool_close(p);
		return st;
	}
	*out = p;
	return RPC_STATUS_OK;
}

void db_pool_close(db_pool *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->size; i++) {
		conn_forget(&p->slots[i]);
		free(p->slots[i].prepared);
	}
	pthread_cond_destroy(&p->freed);
	pthread_mutex_destroy(&p->lock);
	free(p->slots);
	free(p->url);
	free(p->schema);
	free(p->role);
	free(p);
}

rpc_status db_acquire(db_pool *p, uint32_t timeout_ms, db_conn **out)
{
	*out = NULL;
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += timeout_ms / 1000u;
	until.tv_nsec += (long)(timeout_ms % 1000u) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&p->lock);
	while (p->free_list == NULL) {
		if (pthread_cond_timedwait(&p->freed, &p->lock, &until) == ETIMEDOUT &&
		    p->free_list == NULL) {
			pthread_mutex_unlock(&p->lock);
			return RPC_STATUS_DEADLINE_EXCEEDED;
		}
	}
	db_conn *c = p->free_list;
	p->free_list = c->next_free;
	pthread_mutex_unlock(&p->lock);

	if (c->pg == NULL || c->broken || PQstatus(c->pg) != CONNECTION_OK) {
		rpc_status st = conn_open(p, c);
		if (st != RPC_STATUS_OK) {
			db_release(p, c);
			return st;
		}
	}
	c->sqlstate[0] = '\0';
	*out = c;
	return RPC_STATUS_OK;
}

void db_release(db_pool *p, db_conn *c)
{
	if (c == NULL)
		return;
	if (c->pg != NULL && !c->broken && PQtransactionStatus(c->pg) != PQTRANS_IDLE) {
		PGresult *r = PQexec(c->pg, "ROLLBACK");
		if (r == NULL || PQresultStatus(r) != PGRES_COMMAND_OK)
			c->broken = 1;
		PQclear(r);
	}
	if (c->broken || (c->pg != NULL && PQstatus(c->pg) != CONNECTION_OK))
		conn_forget(c);
	pthread_mutex_lock(&p->lock);
	c->next_free = p->free_list;
	p->free_list = c;
	pthread_cond_signal(&p->freed);
	pthread_mutex_unlock(&p->lock);
}

/* ---- statements ---- */

static int is_prepared(const db_conn *c, const char *name)
{
	for (size_t i = 0; i < c->n_prepared; i++) {
		if (strcmp(c->prepared[i], name) == 0)
			return 1;
	}
	return 0;
}

static int remember_prepared(db_conn *c, const char *name)
{
	if (c->n_prepared == c->cap_prepared) {
		size_t cap = c->cap_prepared ? c->cap_prepared * 2 : 16;
		char **np = realloc(c->prepared, cap * sizeof(*np));
		if (np == NULL)
			return -1;
		c->prepared = np;
		c->cap_prepared = cap;
	}
	char *copy = strdup(name);
	if (copy == NULL)
		return -1;
	c->prepared[c->n_prepared++] = copy;
	return 0;
}

/* The status of a failed result, marking the connection broken when the
 * failure was the connection's. */
static rpc_status fail_result(db_conn *c, PGresult *r, const char *what)
{
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	snprintf(c->sqlstate, sizeof(c->sqlstate), "%s", state ? state : "");
	rpc_status st;
	if (PQstatus(c->pg) != CONNECTION_OK) {
		c->broken = 1;
		st = RPC_STATUS_UNAVAILABLE;
	} else {
		st = status_from_sqlstate(state);
	}
	if (st == RPC_STATUS_INTERNAL || st == RPC_STATUS_UNAVAILABLE)
		log_write(st == RPC_STATUS_INTERNAL ? LOG_ERROR : LOG_WARN, NULL, "db.error",
		          "%s %s: %s", what, c->sqlstate, PQerrorMessage(c->pg));
	PQclear(r);
	return st;
}

rpc_status db_exec(db_conn *c, const char *name, const char *sql, int n, const char *const *params,
                   PGresult **res)
{
	if (res != NULL)
		*res = NULL;
	if (c == NULL || sql == NULL || n < 0 || (n > 0 && params == NULL))
		return RPC_STATUS_INVALID_ARGUMENT;
	c->sqlstate[0] = '\0';
	PGresult *r;
	if (name != NULL) {
		if (!is_prepared(c, name)) {
			r = PQprepare(c->pg, name, sql, n, NULL);
			if (r == NULL || PQresultStatus(r) != PGRES_COMMAND_OK)
				return fail_result(c, r, name);
			PQclear(r);
			if (remember_prepared(c, name) != 0)
				return RPC_STATUS_RESOURCE_EXHAUSTED;
		}
		r = PQexecPrepared(c->pg, name, n, params, NULL, NULL, 0);
	} else {
		r = PQexecParams(c->pg, sql, n, NULL, params, NULL, NULL, 0);
	}
	ExecStatusType es = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
	if (es != PGRES_COMMAND_OK && es != PGRES_TUPLES_OK)
		return fail_result(c, r, name ? name : "statement");
	if (res != NULL)
		*res = r;
	else
		PQclear(r);
	return RPC_STATUS_OK;
}

rpc_status db_exec_row(db_conn *c, const char *name, const char *sql, int n,
                       const char *const *params, PGresult **row)
{
	if (row == NULL)
		return RPC_STATUS_INVALID_ARGUMENT;
	rpc_status st = db_exec(c, name, sql, n, params, row);
	if (st == RPC_STATUS_OK && PQntuples(*row) == 0) {
		PQclear(*row);
		*row = NULL;
		return RPC_STATUS_NOT_FOUND;
	}
	return st;
}

rpc_status db_exec_int64(db_conn *c, const char *name, const char *sql, int n,
                         const char *const *params, int64_t *out)
{
	PGresult *r;
	rpc_status st = db_exec(c, name, sql, n, params, &r);
	if (st != RPC_STATUS_OK)
		return st;
	st = RPC_STATUS_INTERNAL;
	if (PQntuples(r) >= 1 && PQnfields(r) >= 1 && !PQgetisnull(r, 0, 0)) {
		const char *v = PQgetvalue(r, 0, 0);
		char *end;
		errno = 0;
		long long x = strtoll(v, &end, 10);
		if (end != v && *end == '\0' && errno == 0) {
			*out = (int64_t)x;
			st = RPC_STATUS_OK;
		}
	}
	if (st != RPC_STATUS_OK)
		log_write(LOG_ERROR, NULL, "db.error", "%s: the answer is not one integer",
		          name ? name : "statement");
	PQclear(r);
	return st;
}

rpc_status db_purge(db_pool *pool, const char *sql, uint32_t keep_s, long *deleted)
{
	if (deleted != NULL)
		*deleted = 0;
	if (pool == NULL || sql == NULL)
		return RPC_STATUS_INVALID_ARGUMENT;
	db_conn *c;
	rpc_status st = db_acquire(pool, 30000, &c);
	if (st != RPC_STATUS_OK)
		return st;
	char keep[16], batch[16];
	snprintf(keep, sizeof(keep), "%u", keep_s);
	snprintf(batch, sizeof(batch), "%d", DB_PURGE_BATCH);
	const char *p[2] = {keep, batch};
	for (int round = 0; round < DB_PURGE_ROUNDS; round++) {
		PGresult *r;
		if ((st = db_exec(c, NULL, sql, 2, p, &r)) != RPC_STATUS_OK)
			break;
		long n = atol(PQcmdTuples(r));
		PQclear(r);
		if (deleted != NULL)
			*deleted += n;
		if (n < DB_PURGE_BATCH)
			break;
	}
	db_release(pool, c);
	return st;
}

const char *db_last_sqlstate(const db_conn *c)
{
	return c ? c->sqlstate : "";
}

/* ---- transactions ---- */

static void backoff(int attempt)
{
	unsigned char b = 0;
	RAND_bytes(&b, 1);
	long ms = (long)attempt * 2 + b % 10;
	struct timespec ts = {0, ms * 1000000L};
	nanosleep(&ts, NULL);
}

rpc_status db_transaction(db_pool *p, int flags, uint32_t timeout_ms, db_tx_fn fn, void *arg)
{
	db_conn *c;
	rpc_status st = db_acquire(p, timeout_ms, &c);
	if (st != RPC_STATUS_OK)
		return st;
	if (flags == DB_TX_READ) {
		st = fn(c, arg);
		db_release(p, c);
		return st;
	}
	for (int attempt = 1;; attempt++) {
		st = db_exec(c, NULL,
		             (flags & DB_TX_SERIALIZABLE) ? "BEGIN ISOLATION LEVEL SERIALIZABLE"
		                                          : "BEGIN",
		             0, NULL, NULL);
		if (st == RPC_STATUS_OK) {
			st = fn(c, arg);
			/* a statement failed and fn went on: COMMIT would roll back
			 * and still answer OK */
			if (st == RPC_STATUS_OK && c->pg != NULL &&
			    PQtransactionStatus(c->pg) == PQTRANS_INERROR)
				st = RPC_STATUS_INTERNAL;
			if (st == RPC_STATUS_OK)
				st = db_exec(c, NULL, "COMMIT", 0, NULL, NULL);
		}
		if (st != RPC_STATUS_OK && c->pg != NULL && !c->broken &&
		    PQtransactionStatus(c->pg) != PQTRANS_IDLE) {
			PGresult *r = PQexec(c->pg, "ROLLBACK");
			PQclear(r);
		}
		int retry =
		    (flags & (DB_TX_SERIALIZABLE | DB_TX_RETRY)) != 0 && st == RPC_STATUS_ABORTED &&
		    attempt < DB_TX_ATTEMPTS &&
		    (strcmp(c->sqlstate, "40001") == 0 || strcmp(c->sqlstate, "40P01") == 0);
		if (!retry)
			break;
		backoff(attempt);
	}
	db_release(p, c);
	return st;
}

/* ---- roles ---- */

rpc_status db_grant_service_role(db_pool *p, const char *role, const char *schema)
{
	if (p == NULL || !schema_valid(role) || !schema_valid(schema))
		return RPC_STATUS_INVALID_ARGUMENT;
	db_conn *c;
	rpc_status st = db_acquire(p, 30000, &c);
	if (st != RPC_STATUS_OK)
		return st;
	/* Both names are checked identifiers, and these statements take no
	 * parameters in PostgreSQL: they are quoted into the text. */
	char q[5][384];
	snprintf(q[0], sizeof(q[0]),
	         "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '%s') THEN"
	         " CREATE ROLE \"%s\" NOLOGIN; END IF; END $$",
	         role, role);
	snprintf(q[1], sizeof(q[1]), "GRANT USAGE, CREATE ON SCHEMA \"%s\" TO \"%s\"", schema,
	         role);
	snprintf(q[2], sizeof(q[2]),
	         "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA \"%s\" TO \"%s\"",
	         schema, role);
	snprintf(q[3], sizeof(q[3]),
	         "GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA \"%s\" TO \"%s\"", schema,
	         role);
	snprintf(q[4], sizeof(q[4]), "GRANT \"%s\" TO CURRENT_USER", role);
	/* two processes may race to create the role: one at a time */
	if ((st = db_exec(c, NULL, "BEGIN", 0, NULL, NULL)) == RPC_STATUS_OK)
		st = db_exec(c, NULL, "SELECT pg_advisory_xact_lock(hashtext('panthera.roles'))", 0,
		             NULL, NULL);
	for (int i = 0; i < 5 && st == RPC_STATUS_OK; i++)
		st = db_exec(c, NULL, q[i], 0, NULL, NULL);
	if (st == RPC_STATUS_OK)
		st = db_exec(c, NULL, "COMMIT", 0, NULL, NULL);
	db_release(p, c); /* rolls back what did not commit */
	return st;
}

/* ---- migrations ---- */

typedef struct migration {
	int number;
	char *file; /* the file name, NNN_name.sql */
} migration;

static int cmp_migration(const void *a, const void *b)
{
	const migration *x = a, *y = b;
	return (x->number > y->number) - (x->number < y->number);
}

static int migration_name_ok(const char *n)
{
	size_t l = strlen(n);
	if (l < 9 || l > 200 || strcmp(n + l - 4, ".sql") != 0)
		return 0;
	if (!isdigit((unsigned char)n[0]) || !isdigit((unsigned char)n[1]) ||
	    !isdigit((unsigned char)n[2]) || n[3] != '_')
		return 0;
	for (size_t i = 4; i < l - 4; i++) {
		if (!(islower((unsigned char)n[i]) || isdigit((unsigned char)n[i]) || n[i] == '_'))
			return 0;
	}
	return 1;
}

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	char *buf = malloc(DB_MAX_MIGRATION_BYTES + 1);
	size_t n = buf ? fread(buf, 1, DB_MAX_MIGRATION_BYTES + 1, f) : 0;
	int bad = buf == NULL || ferror(f) || n > DB_MAX_MIGRATION_BYTES;
	fclose(f);
	if (bad) {
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

static int sha256_hex(const char *data, size_t len, char out[65])
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
		return -1;
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	return 0;
}

static rpc_status list_migrations(const char *dir, migration **out, size_t *n_out)
{
	*out = NULL;
	*n_out = 0;
	DIR *d = opendir(dir);
	if (d == NULL) {
		log_write(LOG_ERROR, NULL, "db.migrate", "cannot open %s: %s", dir,
		          strerror(errno));
		return RPC_STATUS_FAILED_PRECONDITION;
	}
	migration *list = calloc(DB_MAX_MIGRATIONS, sizeof(*list));
	size_t n = 0;
	rpc_status st = list ? RPC_STATUS_OK : RPC_STATUS_RESOURCE_EXHAUSTED;
	struct dirent *e;
	while (st == RPC_STATUS_OK && (e = readdir(d)) != NULL) {
		if (!migration_name_ok(e->d_name))
			continue;
		if (n == DB_MAX_MIGRATIONS) {
			st = RPC_STATUS_RESOURCE_EXHAUSTED;
			break;
		}
		list[n].number =
		    (e->d_name[0] - '0') * 100 + (e->d_name[1] - '0') * 10 + (e->d_name[2] - '0');
		list[n].file = strdup(e->d_name);
		if (list[n].file == NULL)
			st = RPC_STATUS_RESOURCE_EXHAUSTED;
		else
			n++;
	}
	closedir(d);
	if (st == RPC_STATUS_OK) {
		qsort(list, n, sizeof(*list), cmp_migration);
		for (size_t i = 1; i < n; i++) {
			if (list[i].number == list[i - 1].number) {
				log_write(LOG_ERROR, NULL, "db.migrate", "%s and %s share a number",
				          list[i - 1].file, list[i].file);
				st = RPC_STATUS_FAILED_PRECONDITION;
			}
		}
	}
	if (st != RPC_STATUS_OK) {
		for (size_t i = 0; i < n; i++)
			free(list[i].file);
		free(list);
		return st;
	}
	*out = list;
	*n_out = n;
	return RPC_STATUS_OK;
}

/* Apply one migration unless recorded; FAILED_PRECONDITION when recorded
 * with another checksum. `qtable` is the quoted schema_migrations name. */
static rpc_status apply_migration(db_conn *c, const char *schema, const char *qtable,
                                  const char *dir, const migration *m)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, m->file);
	size_t len;
	char *sql = read_file(path, &len);
	if (sql == NULL) {
		log_write(LOG_ERROR, NULL, "db.migrate", "cannot read %s", path);
		return RPC_STATUS_FAILED_PRECONDITION;
	}
	char sum[65], version[16];
	rpc_status st = RPC_STATUS_OK;
	if (sha256_hex(sql, len, sum) != 0) {
		free(sql);
		return RPC_STATUS_INTERNAL;
	}
	snprintf(version, sizeof(version), "%d", m->number);
	char q[512];
	snprintf(q, sizeof(q), "SELECT sha256 FROM %s WHERE version = $1", qtable);
	const char *p1[1] = {version};
	PGresult *r;
	if ((st = db_exec(c, NULL, q, 1, p1, &r)) != RPC_STATUS_OK)
		goto out;
	if (PQntuples(r) == 1) {
		if (strcmp(PQgetvalue(r, 0, 0), sum) != 0) {
			log_write(
			    LOG_ERROR, NULL, "db.migrate",
			    "migration %s of schema %s changed after it was applied: refusing to run",
			    m->file, schema);
			st = RPC_STATUS_FAILED_PRECONDITION;
		}
		PQclear(r);
		goto out;
	}
	PQclear(r);
	if ((st = db_exec(c, NULL, "BEGIN", 0, NULL, NULL)) != RPC_STATUS_OK)
		goto out;
	const char *ps[1] = {schema};
	if ((st = db_exec(c, NULL, "SELECT set_config('search_path', $1, true)", 1, ps, NULL)) !=
	    RPC_STATUS_OK)
		goto out;
	/* The migration file itself: trusted SQL from the repository, several
	 * statements, so the simple query protocol. */
	r = PQexec(c->pg, sql);
	if (r == NULL ||
	    (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)) {
		log_write(LOG_ERROR, NULL, "db.migrate", "migration %s failed: %s", m->file,
		          PQerrorMessage(c->pg));
		st = fail_result(c, r, m->file);
		if (st == RPC_STATUS_OK || st == RPC_STATUS_INTERNAL)
			st = RPC_STATUS_FAILED_PRECONDITION;
		goto out;
	}
	PQclear(r);
	snprintf(q, sizeof(q), "INSERT INTO %s (version, name, sha256) VALUES ($1, $2, $3)",
	         qtable);
	const char *p3[3] = {version, m->file, sum};
	if ((st = db_exec(c, NULL, q, 3, p3, NULL)) != RPC_STATUS_OK)
		goto out;
	st = db_exec(c, NULL, "COMMIT", 0, NULL, NULL);
	if (st == RPC_STATUS_OK)
		log_write(LOG_INFO, NULL, "db.migrate", "applied %s to schema %s", m->file, schema);
out:
	if (st != RPC_STATUS_OK && c->pg != NULL && PQtransactionStatus(c->pg) != PQTRANS_IDLE) {
		PGresult *rb = PQexec(c->pg, "ROLLBACK");
		PQclear(rb);
	}
	free(sql);
	return st;
}

rpc_status db_migrate(db_pool *p, const char *schema, const char *dir)
{
	if (p == NULL || !schema_valid(schema) || dir == NULL)
		return RPC_STATUS_INVALID_ARGUMENT;
	migration *list;
	size_t n;
	rpc_status st = list_migrations(dir, &list, &n);
	if (st != RPC_STATUS_OK)
		return st;
	db_conn *c;
	if ((st = db_acquire(p, 30000, &c)) != RPC_STATUS_OK)
		goto free_list;
	/* The schema name is checked to be a plain identifier; it still goes
	 * through PQescapeIdentifier, as every identifier built into SQL. */
	char *qschema = PQescapeIdentifier(c->pg, schema, strlen(schema));
	char qtable[256];
	if (qschema == NULL) {
		st = RPC_STATUS_RESOURCE_EXHAUSTED;
		goto release;
	}
	snprintf(qtable, sizeof(qtable), "%s.schema_migrations", qschema);
	const char *ps[1] = {schema};
	if ((st = db_exec(c, NULL, "SELECT pg_advisory_lock(hashtext($1))", 1, ps, NULL)) !=
	    RPC_STATUS_OK)
		goto release;
	char q[512];
	snprintf(q, sizeof(q), "CREATE SCHEMA IF NOT EXISTS %s", qschema);
	if ((st = db_exec(c, NULL, q, 0, NULL, NULL)) == RPC_STATUS_OK) {
		snprintf(
		    q, sizeof(q),
		    "CREATE TABLE IF NOT EXISTS %s (version integer PRIMARY KEY, name text NOT NULL, "
		    "sha256 text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
		    qtable);
		st = db_exec(c, NULL, q, 0, NULL, NULL);
	}
	for (size_t i = 0; i < n && st == RPC_STATUS_OK; i++)
		st = apply_migration(c, schema, qtable, dir, &list[i]);
	if (c->pg != NULL && !c->broken) {
		PGresult *r = PQexecParams(c->pg, "SELECT pg_advisory_unlock(hashtext($1))", 1,
		                           NULL, ps, NULL, NULL, 0);
		PQclear(r);
	}
release:
	PQfreemem(qschema);
	db_release(p, c);
free_list:
	for (size_t i = 0; i < n; i++)
		free(list[i].file);
	free(list);
	return st;
}
