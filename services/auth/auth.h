/*
 * auth.h - the auth service: accounts, passwords, sessions and tokens
 * (panthera.auth.v1.AuthService), and the accounts' profiles and addresses
 * (panthera.users.v1.UserService), on one schema "auth"
 * (services/auth/migrations).
 *
 * Passwords: scrypt through OpenSSL, N = 2^15, r = 8, p = 1, a 16-byte
 * random salt, stored as "$scrypt$ln=15,r=8,p=1$<salt>$<hash>" (see
 * auth_crypto.h); a login with a hash of other parameters stores a new one, so
 * the cost can be raised by changing scrypt_log_n. Passwords are 8..128
 * characters. A wrong email and a wrong password answer the same
 * UNAUTHENTICATED after the same work (an unknown email is checked against
 * a dummy hash).
 *
 * Access tokens: JWTs signed with Ed25519 ("EdDSA"), header kid, claims
 * {iss, sub: user id, aud: "panthera", iat, nbf, exp, roles, sid: session
 * id}, valid access_ttl_s; keys in <data_dir>/keys (see auth_jwt.h), published by
 * GetJwks as RFC 7517/8037 keys. Refresh tokens: 32 random bytes, given
 * once, stored as SHA-256, rotated on every use; a used one presented again
 * revokes its whole session. Password-reset tokens: the same kind, single
 * use, 30 minutes.
 *
 * Caller identity (UserService, Logout): the REST gateway, having verified
 * the access token, sends request metadata
 *   "x-caller-id"     the token's subject (a user id, UUID)
 *   "x-caller-roles"  its roles, comma-separated ("USER" or "USER,ADMIN")
 * Those keys are trusted as the RPC network is: a caller that can reach
 * this server can claim any identity, as it could call EnsureAdmin. A user
 * who is neither the account in question nor ADMIN gets NOT_FOUND, so an
 * account's existence does not leak; a call without "x-caller-id" gets
 * UNAUTHENTICATED (BatchGetUsers, internal, needs none).
 *
 * Events (outbox of schema "auth", in the transaction of the change):
 * panthera.events.v1.UserRegistered, UserDeactivated and
 * PasswordResetRequested (which carries no token).
 *
 * Thread-safety: once served, the service object is shared by the RPC
 * worker threads; its configuration fields must not change while a server
 * serves it (set `notifications` after init, before rpc_server_start).
 */
#ifndef PANTHERA_AUTH_H
#define PANTHERA_AUTH_H

#include <stdint.h>

#include "panthera/auth/v1/auth.panthera.h"
#include "panthera/db.h"
#include "panthera/users/v1/users.panthera.h"

#define AUTH_SCHEMA              "auth"
#define AUTH_DEFAULT_ISSUER      "panthera"
#define AUTH_DEFAULT_ACCESS_TTL  900u              /* 15 minutes */
#define AUTH_DEFAULT_REFRESH_TTL (30u * 24 * 3600) /* 30 days */
#define AUTH_RESET_TTL_S         1800u             /* 30 minutes */

/* The caller's identity comes from the metadata keys of panthera/caller.h. */

/*
 * TEST ONLY: receives the clear password-reset token of every reset made
 * (user id, the account's email, the token), on the handler's thread,
 * before the reply. A deployment leaves it NULL: a token must reach only
 * the account's mailbox.
 */
typedef void (*auth_reset_token_fn)(void *arg, const char *user_id, const char *email,
                                    const char *token);

struct auth_private;

typedef struct auth_service {
	/* On a database migrated with services/auth/migrations into schema
	 * "auth", with search_path "auth" (db_pool_opts.schema). Required. */
	db_pool *pool;
	/* Folder of the signing keys (<data_dir>/keys, created 0700). Required. */
	const char *data_dir;
	/* `iss` of access tokens: printable ASCII without '"' or '\\'.
	 * NULL: "panthera". */
	const char *issuer;
	/* Lifetimes in seconds. 0: AUTH_DEFAULT_ACCESS_TTL, AUTH_DEFAULT_REFRESH_TTL. */
	uint32_t access_ttl_s;
	uint32_t refresh_ttl_s;
	/* NotificationService, for password-reset emails (SendEmail, which
	 * neither stores nor logs the body). NULL: no email is sent; the log
	 * says a reset was requested for the user id, never the token. */
	rpc_channel *notifications;
	/* scrypt cost of new password hashes: N = 2^scrypt_log_n, 1..18
	 * (128 * 8 * N bytes a hash: 32 MiB at 15, per login at once).
	 * 0: 15. Below 15 only for tests (a warning is logged). */
	uint32_t scrypt_log_n;
	/* TEST ONLY; see auth_reset_token_fn. NULL in production. */
	auth_reset_token_fn reset_token_sink;
	void *reset_token_sink_arg;
	/* Keys and derived state: set by auth_service_init, freed by
	 * auth_service_fini. Not for callers. */
	struct auth_private *priv;
} auth_service;

/*
 * Prepare `svc` (its configuration fields set): load the signing keys of
 * <data_dir>/keys, generating the first one when there is none, create the
 * outbox of schema "auth" (ev_outbox_setup), and compute the dummy hash
 * that unknown emails are checked against. INVALID_ARGUMENT for a missing
 * pool or data_dir, a bad issuer or scrypt_log_n; INTERNAL when the keys
 * cannot be read or written; the database's status otherwise. On error
 * nothing is left to free. Not thread-safe; once per service object.
 */
rpc_status auth_service_init(auth_service *svc);

/* Serve AuthService and UserService on `srv` with `svc` (initialised, and
 * outliving the server). The status of the first registration that fails. */
rpc_status auth_service_register(rpc_server *srv, auth_service *svc);

/*
 * Make sure the account `email` exists and has the ADMIN role: create it
 * (ACTIVE, roles USER and ADMIN, this password, names "Admin") or add
 * ADMIN to an existing account whose password this is, without touching
 * it. PERMISSION_DENIED (logged) when the account exists with another
 * password and is not an admin yet: whoever registered the address first
 * is never promoted by a restart. An existing admin is left as is. Idempotent;
 * safe against a concurrent start doing the same. INVALID_ARGUMENT for an
 * email that is not one or a password outside 8..128 characters. The same
 * as the EnsureAdmin RPC.
 */
rpc_status auth_bootstrap_admin(auth_service *svc, const char *email, const char *password);

/*
 * Generate a new signing key in <data_dir>/keys and sign with it from now
 * on; tokens signed by the older keys keep verifying, and GetJwks lists
 * them all, newest first. kid_out (may be NULL) gets the new kid (17
 * bytes). Thread-safe.
 */
rpc_status auth_service_rotate_key(auth_service *svc, char *kid_out);

/*
 * Delete what can no longer matter: session families whose every refresh
 * token expired, or was revoked, more than a day ago, and password-reset
 * tokens expired more than a day ago (at most 1000 families a call).
 * *removed (may be NULL) gets the number of rows deleted. The service
 * binary runs it periodically, as the inventory sweeper. Thread-safe.
 */
rpc_status auth_sweep_expired(auth_service *svc, unsigned *removed);

/* Free what auth_service_init made. After the server is destroyed. An
 * object never initialised (priv NULL) is harmless. */
void auth_service_fini(auth_service *svc);

#endif /* PANTHERA_AUTH_H */
