/*
 * store.c - the auth service's SQL; see auth_store.h. Parameters only.
 */
#include "auth_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "auth_jwt.h"

#define USER_COLS                                                                \
	"id, email, first_name, last_name, array_to_string(roles, ','), status," \
	" (extract(epoch FROM created_at) * 1000000)::bigint,"                   \
	" (extract(epoch FROM updated_at) * 1000000)::bigint"

#define ADDR_COLS "id, street, city, state, zip_code, country, is_default"

unsigned auth_roles_from_text(const char *csv)
{
	unsigned roles = 0;
	const char *p = csv;
	while (p != NULL && *p != '\0') {
		size_t n = strcspn(p, ",");
		if (n == 4 && strncmp(p, "USER", 4) == 0)
			roles |= AUTH_ROLE_USER;
		else if (n == 5 && strncmp(p, "ADMIN", 5) == 0)
			roles |= AUTH_ROLE_ADMIN;
		p += n;
		if (*p == ',')
			p++;
	}
	return roles;
}

const char *auth_roles_literal(unsigned roles)
{
	return roles & AUTH_ROLE_ADMIN ? "{USER,ADMIN}" : "{USER}";
}

/* ---- users ---- */

rpc_status auth_store_insert_user(db_conn *c, const char *id, const char *email,
                                  const char *password_hash, const char *first_name,
                                  const char *last_name, unsigned roles, PGresult **user)
{
	const char *p[6] = {id,         email,     password_hash,
	                    first_name, last_name, auth_roles_literal(roles)};
	return db_exec(c, "auth_insert_user",
	               "INSERT INTO users (id, email, password_hash, first_name, last_name, roles)"
	               " VALUES ($1, lower($2), $3, $4, $5, $6::text[]) RETURNING " USER_COLS,
	               6, p, user);
}

rpc_status auth_store_get_user(db_conn *c, const char *id, int lock, PGresult **user)
{
	const char *p[1] = {id};
	return lock ? db_exec_row(c, "auth_get_user_lock",
	                          "SELECT " USER_COLS " FROM users WHERE id = $1 FOR UPDATE", 1, p,
	                          user)
	            : db_exec_row(c, "auth_get_user",
	                          "SELECT " USER_COLS " FROM users WHERE id = $1", 1, p, user);
}

rpc_status auth_store_get_user_by_email(db_conn *c, const char *email, PGresult **user)
{
	const char *p[1] = {email};
	return db_exec_row(c, "auth_get_user_by_email",
	                   "SELECT " USER_COLS " FROM users WHERE email = lower($1)", 1, p, user);
}

rpc_status auth_store_find_login(db_conn *c, const char *email, auth_login_row *out)
{
	const char *p[1] = {email};
	PGresult *r;
	rpc_status st = db_exec_row(c, "auth_find_login",
	                            "SELECT id, password_hash, status = 'ACTIVE',"
	                            " array_to_string(roles, ',') FROM users"
	                            " WHERE email = lower($1)",
	                            1, p, &r);
	if (st != RPC_STATUS_OK)
		return st;
	snprintf(out->id, sizeof(out->id), "%s", PQgetvalue(r, 0, 0));
	const char *h = PQgetvalue(r, 0, 1);
	if (strlen(h) < sizeof(out->password_hash))
		memcpy(out->password_hash, h, strlen(h) + 1);
	else
		out->password_hash[0] = '\0';
	out->active = PQgetvalue(r, 0, 2)[0] == 't';
	out->roles = auth_roles_from_text(PQgetvalue(r, 0, 3));
	PQclear(r);
	return RPC_STATUS_OK;
}

rpc_status auth_store_upgrade_hash(db_conn *c, const char *id, const char *old_hash,
                                   const char *new_hash)
{
	const char *p[3] = {id, old_hash, new_hash};
	return db_exec(c, "auth_upgrade_hash",
	               "UPDATE users SET password_hash = $3 WHERE id = $1 AND password_hash = $2",
	               3, p, NULL);
}

rpc_status auth_store_set_password(db_conn *c, const char *id, const char *password_hash)
{
	const char *p[2] = {id, password_hash};
	PGresult *r;
	rpc_status st = db_exec_row(c, "auth_set_password",
	                            "UPDATE users SET password_hash = $2, updated_at = now()"
	                            " WHERE id = $1 AND status = 'ACTIVE' RETURNING id",
	                            2, p, &r);
	PQclear(r);
	return st;
}

rpc_status auth_store_update_user(db_conn *c, const char *id, const auth_user_change *ch,
                                  PGresult **user)
{
	const char *p[9] = {id,
	                    ch->set_first_name ? "t" : "f",
	                    ch->set_first_name ? ch->first_name : "",
	                    ch->set_last_name ? "t" : "f",
	                    ch->set_last_name ? ch->last_name : "",
	                    ch->set_roles ? "t" : "f",
	                    auth_roles_literal(ch->roles),
	                    ch->set_status ? "t" : "f",
	                    ch->set_status ? ch->status : "ACTIVE"};
	return db_exec_row(c, "auth_update_user",
	                   "UPDATE users SET"
	                   " first_name = CASE WHEN $2::boolean THEN $3 ELSE first_name END,"
	                   " last_name = CASE WHEN $4::boolean THEN $5 ELSE last_name END,"
	                   " roles = CASE WHEN $6::boolean THEN $7::text[] ELSE roles END,"
	                   " status = CASE WHEN $8::boolean THEN $9 ELSE status END,"
	                   " updated_at = now() WHERE id = $1 RETURNING " USER_COLS,
	                   9, p, user);
}

rpc_status auth_store_list_users(db_conn *c, long long limit, long long offset, PGresult **users,
                                 long long *total)
{
	int64_t n;
	rpc_status st =
	    db_exec_int64(c, "auth_count_users", "SELECT count(*) FROM users", 0, NULL, &n);
	if (st != RPC_STATUS_OK)
		return st;
	*total = n;
	char l[24], o[24];
	snprintf(l, sizeof(l), "%lld", limit);
	snprintf(o, sizeof(o), "%lld", offset);
	const char *p[2] = {l, o};
	return db_exec(c, "auth_list_users",
	               "SELECT " USER_COLS " FROM users ORDER BY created_at, id"
	               " LIMIT $1::bigint OFFSET $2::bigint",
	               2, p, users);
}

rpc_status auth_store_batch_users(db_conn *c, const char *ids_literal, PGresult **users)
{
	const char *p[1] = {ids_literal};
	return db_exec(c, "auth_batch_users",
	               "SELECT " USER_COLS " FROM users WHERE id = ANY ($1::uuid[])", 1, p, users);
}

rpc_status auth_store_insert_admin(db_conn *c, const char *id, const char *email,
                                   const char *password_hash, PGresult **user)
{
	const char *p[3] = {id, email, password_hash};
	return db_exec_row(c, "auth_insert_admin",
	                   "INSERT INTO users (id, email, password_hash, first_name, last_name,"
	                   " roles) VALUES ($1, lower($2), $3, 'Admin', 'Admin', '{USER,ADMIN}')"
	                   " ON CONFLICT (email) DO NOTHING RETURNING " USER_COLS,
	                   3, p, user);
}

/* ---- sessions ---- */

rpc_status auth_store_session_open(db_conn *c, const char *id, const char *user_id,
                                   const char *hash_hex, unsigned ttl_s)
{
	char ttl[16];
	snprintf(ttl, sizeof(ttl), "%u", ttl_s);
	const char *p[4] = {id, user_id, hash_hex, ttl};
	PGresult *r;
	/* the first token's id is also the family's: the `sid` claim */
	rpc_status st =
	    db_exec_row(c, "auth_session_open",
	                "INSERT INTO sessions (id, family_id, user_id, refresh_hash, expires_at)"
	                " SELECT $1, $1, id, $3::bytea, now() + $4::int * interval '1 second'"
	                " FROM users WHERE id = $2 AND status = 'ACTIVE' RETURNING id",
	                4, p, &r);
	PQclear(r);
	return st;
}

rpc_status auth_store_session_lock(db_conn *c, const char *hash_hex, auth_session_row *out)
{
	const char *p[1] = {hash_hex};
	PGresult *r;
	rpc_status st = db_exec_row(
	    c, "auth_session_lock",
	    "SELECT s.id, s.family_id, s.user_id, s.generation, s.replaced_by IS NOT NULL,"
	    " s.revoked_at IS NOT NULL, s.expires_at <= now(), u.status = 'ACTIVE',"
	    " array_to_string(u.roles, ',')"
	    " FROM sessions s JOIN users u ON u.id = s.user_id"
	    " WHERE s.refresh_hash = $1::bytea FOR UPDATE OF s",
	    1, p, &r);
	if (st != RPC_STATUS_OK)
		return st;
	snprintf(out->id, sizeof(out->id), "%s", PQgetvalue(r, 0, 0));
	snprintf(out->family_id, sizeof(out->family_id), "%s", PQgetvalue(r, 0, 1));
	snprintf(out->user_id, sizeof(out->user_id), "%s", PQgetvalue(r, 0, 2));
	out->generation = atoi(PQgetvalue(r, 0, 3));
	out->replaced = PQgetvalue(r, 0, 4)[0] == 't';
	out->revoked = PQgetvalue(r, 0, 5)[0] == 't';
	out->expired = PQgetvalue(r, 0, 6)[0] == 't';
	out->user_active = PQgetvalue(r, 0, 7)[0] == 't';
	out->roles = auth_roles_from_text(PQgetvalue(r, 0, 8));
	PQclear(r);
	return RPC_STATUS_OK;
}

rpc_status auth_store_session_rotate(db_conn *c, const auth_session_row *old, const char *new_id,
                                     const char *hash_hex, unsigned ttl_s)
{
	char ttl[16], gen[16];
	snprintf(ttl, sizeof(ttl), "%u", ttl_s);
	snprintf(gen, sizeof(gen), "%d", old->generation + 1);
	const char *p[6] = {new_id, old->family_id, old->user_id, hash_hex, ttl, gen};
	rpc_status st = db_exec(
	    c, "auth_session_insert",
	    "INSERT INTO sessions (id, family_id, user_id, refresh_hash, expires_at, generation)"
	    " VALUES ($1, $2, $3, $4::bytea, now() + $5::int * interval '1 second', $6::int)",
	    6, p, NULL);
	if (st != RPC_STATUS_OK)
		return st;
	const char *q[2] = {old->id, new_id};
	return db_exec(c, "auth_session_replaced",
	               "UPDATE sessions SET replaced_by = $2, used_at = now() WHERE id = $1", 2, q,
	               NULL);
}

rpc_status auth_store_revoke_family(db_conn *c, const char *family_id)
{
	const char *p[1] = {family_id};
	return db_exec(c, "auth_revoke_family",
	               "UPDATE sessions SET revoked_at = now()"
	               " WHERE family_id = $1 AND revoked_at IS NULL",
	               1, p, NULL);
}

rpc_status auth_store_revoke_user(db_conn *c, const char *user_id)
{
	const char *p[1] = {user_id};
	return db_exec(c, "auth_revoke_user",
	               "UPDATE sessions SET revoked_at = now()"
	               " WHERE user_id = $1 AND revoked_at IS NULL",
	               1, p, NULL);
}

rpc_status auth_store_sweep(db_conn *c, int limit, long long *removed)
{
	char l[16];
	snprintf(l, sizeof(l), "%d", limit);
	const char *p[1] = {l};
	int64_t sessions, resets;
	rpc_status st = db_exec_int64(
	    c, "auth_sweep_sessions",
	    "WITH dead AS (SELECT family_id FROM sessions GROUP BY family_id"
	    " HAVING max(expires_at) < now() - interval '1 day'"
	    " OR (bool_and(revoked_at IS NOT NULL) AND max(revoked_at) < now() - interval '1 day')"
	    " LIMIT $1::int),"
	    " gone AS (DELETE FROM sessions WHERE family_id IN (SELECT family_id FROM dead)"
	    " RETURNING 1)"
	    " SELECT count(*) FROM gone",
	    1, p, &sessions);
	if (st != RPC_STATUS_OK)
		return st;
	*removed = sessions;
	st = db_exec_int64(c, "auth_sweep_resets",
	                   "WITH gone AS (DELETE FROM password_resets"
	                   " WHERE expires_at < now() - interval '1 day' RETURNING 1)"
	                   " SELECT count(*) FROM gone",
	                   0, NULL, &resets);
	if (st != RPC_STATUS_OK)
		return st;
	*removed += resets;
	return RPC_STATUS_OK;
}

/* ---- password resets ---- */

rpc_status auth_store_reset_create(db_conn *c, const char *user_id, const char *hash_hex,
                                   unsigned ttl_s, long long *expires_s)
{
	const char *u[1] = {user_id};
	rpc_status st = db_exec(c, "auth_reset_supersede",
	                        "UPDATE password_resets SET used_at = now()"
	                        " WHERE user_id = $1 AND used_at IS NULL",
	                        1, u, NULL);
	if (st != RPC_STATUS_OK)
		return st;
	char ttl[16];
	snprintf(ttl, sizeof(ttl), "%u", ttl_s);
	const char *p[3] = {hash_hex, user_id, ttl};
	PGresult *r;
	st = db_exec_row(c, "auth_reset_create",
	                 "INSERT INTO password_resets (token_hash, user_id, expires_at)"
	                 " VALUES ($1::bytea, $2, now() + $3::int * interval '1 second')"
	                 " RETURNING extract(epoch FROM expires_at)::bigint",
	                 3, p, &r);
	if (st == RPC_STATUS_OK) {
		*expires_s = atoll(PQgetvalue(r, 0, 0));
		PQclear(r);
	}
	return st;
}

rpc_status auth_store_reset_consume(db_conn *c, const char *hash_hex, char user_id[37])
{
	const char *p[1] = {hash_hex};
	PGresult *r;
	rpc_status st = db_exec_row(c, "auth_reset_consume",
	                            "UPDATE password_resets SET used_at = now()"
	                            " WHERE token_hash = $1::bytea AND used_at IS NULL"
	                            " AND expires_at > now() RETURNING user_id",
	                            1, p, &r);
	if (st != RPC_STATUS_OK)
		return st;
	snprintf(user_id, 37, "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	const char *u[1] = {user_id};
	return db_exec(c, "auth_reset_supersede",
	               "UPDATE password_resets SET used_at = now()"
	               " WHERE user_id = $1 AND used_at IS NULL",
	               1, u, NULL);
}

/* ---- addresses ---- */

rpc_status auth_store_address_count(db_conn *c, const char *user_id, long *n)
{
	const char *p[1] = {user_id};
	int64_t v;
	rpc_status st = db_exec_int64(
	    c, "auth_address_count", "SELECT count(*) FROM addresses WHERE user_id = $1", 1, p, &v);
	if (st == RPC_STATUS_OK)
		*n = (long)v;
	return st;
}

rpc_status auth_store_address_insert(db_conn *c, const char *id, const char *user_id,
                                     const char *street, const char *city, const char *state,
                                     const char *zip_code, const char *country, int is_default,
                                     PGresult **addr)
{
	if (is_default) {
		const char *u[1] = {user_id};
		rpc_status st = db_exec(c, "auth_address_undefault",
		                        "UPDATE addresses SET is_default = false"
		                        " WHERE user_id = $1 AND is_default",
		                        1, u, NULL);
		if (st != RPC_STATUS_OK)
			return st;
	}
	const char *p[8] = {id,    user_id,  street,  city,
	                    state, zip_code, country, is_default ? "t" : "f"};
	return db_exec(c, "auth_address_insert",
	               "INSERT INTO addresses (id, user_id, street, city, state, zip_code, country,"
	               " is_default) VALUES ($1, $2, $3, $4, $5, $6, $7, $8::boolean)"
	               " RETURNING " ADDR_COLS,
	               8, p, addr);
}

rpc_status auth_store_address_list(db_conn *c, const char *user_id, PGresult **addrs)
{
	const char *p[1] = {user_id};
	return db_exec(c, "auth_address_list",
	               "SELECT " ADDR_COLS " FROM addresses WHERE user_id = $1"
	               " ORDER BY is_default DESC, created_at, id",
	               1, p, addrs);
}

rpc_status auth_store_address_delete(db_conn *c, const char *user_id, const char *id)
{
	const char *p[2] = {user_id, id};
	PGresult *r;
	rpc_status st = db_exec_row(c, "auth_address_delete",
	                            "DELETE FROM addresses WHERE user_id = $1 AND id = $2"
	                            " RETURNING is_default",
	                            2, p, &r);
	if (st != RPC_STATUS_OK)
		return st;
	int was_default = PQgetvalue(r, 0, 0)[0] == 't';
	PQclear(r);
	if (!was_default)
		return RPC_STATUS_OK;
	return db_exec(c, "auth_address_promote",
	               "UPDATE addresses SET is_default = true WHERE id ="
	               " (SELECT id FROM addresses WHERE user_id = $1"
	               " ORDER BY created_at, id LIMIT 1)",
	               1, p, NULL);
}
