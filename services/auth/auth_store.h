/*
 * auth_store.h - the auth service's SQL (internal). Every function runs on a
 * connection inside the caller's transaction, with text parameters only.
 * Emails are lower-cased by the SQL (lower($n)), ids are UUIDs checked by
 * the caller, hashes are bytea parameters in hex form (auth_crypto.h).
 */
#ifndef PANTHERA_AUTH_STORE_H
#define PANTHERA_AUTH_STORE_H

#include "auth_crypto.h"
#include "panthera/db.h"

/* The columns of a user as every function below that returns users
 * selects them, in this order. Roles come as "USER,ADMIN"; times as
 * microseconds since the epoch. */
enum {
	AUTH_USER_ID,
	AUTH_USER_EMAIL,
	AUTH_USER_FIRST_NAME,
	AUTH_USER_LAST_NAME,
	AUTH_USER_ROLES,
	AUTH_USER_STATUS,
	AUTH_USER_CREATED_US,
	AUTH_USER_UPDATED_US,
	AUTH_USER_NCOLS
};

/* The columns of an address: id, street, city, state, zip_code, country,
 * is_default ("t"/"f"). */
enum {
	AUTH_ADDR_ID,
	AUTH_ADDR_STREET,
	AUTH_ADDR_CITY,
	AUTH_ADDR_STATE,
	AUTH_ADDR_ZIP,
	AUTH_ADDR_COUNTRY,
	AUTH_ADDR_DEFAULT,
	AUTH_ADDR_NCOLS
};

/* Role bits (auth_jwt.h's AUTH_ROLE_*) from "USER,ADMIN", and the array literal
 * ("{USER,ADMIN}") that stores them; USER is always included. */
unsigned auth_roles_from_text(const char *csv);
const char *auth_roles_literal(unsigned roles);

/* ---- users ---- */

/* Insert an ACTIVE account; *user (PQclear) gets its row. ALREADY_EXISTS
 * when the email is taken. */
rpc_status auth_store_insert_user(db_conn *c, const char *id, const char *email,
                                  const char *password_hash, const char *first_name,
                                  const char *last_name, unsigned roles, PGresult **user);

/* The account `id` (locked FOR UPDATE with `lock`); NOT_FOUND. */
rpc_status auth_store_get_user(db_conn *c, const char *id, int lock, PGresult **user);

/* The account of `email`; NOT_FOUND. */
rpc_status auth_store_get_user_by_email(db_conn *c, const char *email, PGresult **user);

typedef struct auth_login_row {
	char id[37];
	char password_hash[256]; /* "" when the stored one does not fit */
	int active;
	unsigned roles;
} auth_login_row;

/* What a login checks, for `email`; NOT_FOUND. The caller wipes `out`. */
rpc_status auth_store_find_login(db_conn *c, const char *email, auth_login_row *out);

/* Replace the password hash of `id`, only while it still is `old_hash`
 * (a login upgrading the parameters never undoes a concurrent reset). */
rpc_status auth_store_upgrade_hash(db_conn *c, const char *id, const char *old_hash,
                                   const char *new_hash);

/* Set the password hash of the ACTIVE account `id`; NOT_FOUND when there is
 * no such active account. */
rpc_status auth_store_set_password(db_conn *c, const char *id, const char *password_hash);

/* Change the fields whose flag is set; *user gets the new row. NOT_FOUND. */
typedef struct auth_user_change {
	int set_first_name, set_last_name, set_roles, set_status;
	const char *first_name, *last_name;
	unsigned roles;
	const char *status; /* "ACTIVE" or "DEACTIVATED" */
} auth_user_change;
rpc_status auth_store_update_user(db_conn *c, const char *id, const auth_user_change *ch,
                                  PGresult **user);

/* Page of accounts oldest first, and the number of all accounts. */
rpc_status auth_store_list_users(db_conn *c, long long limit, long long offset, PGresult **users,
                                 long long *total);

/* Accounts whose ids are in `ids_literal` ("{uuid,uuid}"). */
rpc_status auth_store_batch_users(db_conn *c, const char *ids_literal, PGresult **users);

/*
 * Bootstrap: create `email` as an ACTIVE USER and ADMIN with this hash.
 * NOT_FOUND when an account of that email exists (the caller then checks
 * the password before promoting it: never a blind promotion).
 */
rpc_status auth_store_insert_admin(db_conn *c, const char *id, const char *email,
                                   const char *password_hash, PGresult **user);

/* ---- sessions (one row per refresh token; see the migration) ---- */

/* Open a new session family with its first refresh token, for an ACTIVE
 * account only (NOT_FOUND otherwise). */
rpc_status auth_store_session_open(db_conn *c, const char *id, const char *user_id,
                                   const char *hash_hex, unsigned ttl_s);

typedef struct auth_session_row {
	char id[37], family_id[37], user_id[37];
	int generation;
	int replaced; /* rotated already: presenting it again is reuse */
	int revoked;  /* logout, deactivation, reset, or reuse */
	int expired;
	int user_active;
	unsigned roles;
} auth_session_row;

/* The refresh token of this hash, locked; NOT_FOUND. */
rpc_status auth_store_session_lock(db_conn *c, const char *hash_hex, auth_session_row *out);

/* Rotate: a new token `new_id` in the family of `old`, which is marked
 * used and replaced by it. */
rpc_status auth_store_session_rotate(db_conn *c, const auth_session_row *old, const char *new_id,
                                     const char *hash_hex, unsigned ttl_s);

/* Revoke every live token of a family, or of a user. */
rpc_status auth_store_revoke_family(db_conn *c, const char *family_id);
rpc_status auth_store_revoke_user(db_conn *c, const char *user_id);

/*
 * Delete, at most `limit` families at a time, the session families whose
 * every token expired, or was revoked, more than a day ago (whole families,
 * so no replaced_by is left dangling), and reset tokens expired more than a
 * day ago. *removed gets the number of rows deleted.
 */
rpc_status auth_store_sweep(db_conn *c, int limit, long long *removed);

/* ---- password resets ---- */

/* A new reset token for `user_id` valid ttl_s, superseding the open ones;
 * *expires_s gets its expiry (Unix seconds). */
rpc_status auth_store_reset_create(db_conn *c, const char *user_id, const char *hash_hex,
                                   unsigned ttl_s, long long *expires_s);

/* Use the reset token of this hash: unused and unexpired, else NOT_FOUND.
 * Marks it and every other open token of its user used; the user id goes
 * to user_id[37]. */
rpc_status auth_store_reset_consume(db_conn *c, const char *hash_hex, char user_id[37]);

/* ---- addresses ---- */

rpc_status auth_store_address_count(db_conn *c, const char *user_id, long *n);

/* Insert; with is_default, the user's other addresses lose the flag
 * first. *addr gets the row. */
rpc_status auth_store_address_insert(db_conn *c, const char *id, const char *user_id,
                                     const char *street, const char *city, const char *state,
                                     const char *zip_code, const char *country, int is_default,
                                     PGresult **addr);

/* The user's addresses, the default first, then oldest first. */
rpc_status auth_store_address_list(db_conn *c, const char *user_id, PGresult **addrs);

/* Delete the user's address `id` (NOT_FOUND when not theirs); when it was
 * the default, the oldest remaining one becomes the default. */
rpc_status auth_store_address_delete(db_conn *c, const char *user_id, const char *id);

#endif /* PANTHERA_AUTH_STORE_H */
