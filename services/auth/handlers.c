/*
 * handlers.c - AuthService over RPC: registration, login, refresh-token
 * rotation with reuse detection, logout, the JWKS, password reset, the
 * admin bootstrap and token verification. Each handler validates, does the
 * expensive hashing outside any transaction, runs the store's SQL in one
 * transaction, and maps the outcome to a reply. Secrets (passwords, clear
 * tokens) are never logged and are wiped once used.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>

#include "auth_check.h"
#include "auth_internal.h"
#include "auth_store.h"
#include "panthera/events/v1/events.pb-c.h"
#include "panthera/ids.h"
#include "panthera/log.h"
#include "panthera/notifications/v1/notifications.panthera.h"

#define MAX_LOGIN_EMAIL_BYTES 254
#define MAX_LOGIN_PW_BYTES    (4 * AUTH_PASSWORD_MAX)

static const char bad_credentials[] = "invalid email or password";
static const char bad_refresh[] = "refresh token is not valid";
static const char bad_reset[] = "reset token is not valid (used, expired or unknown)";

/*
 * Wipe a secret of the request once used. The request is the runtime's
 * decoded copy, writable memory that dies with the call; its bytes on the
 * wire are the runtime's to free. "" (protobuf-c's shared empty string) is
 * left alone.
 */
static void wipe_request_string(const char *s)
{
	if (s != NULL && s[0] != '\0')
		OPENSSL_cleanse((char *)s, strlen(s));
}

static const char *request_id(const rpc_call *call)
{
	return rpc_call_metadata(call, "x-request-id");
}

/* ---- tokens ---- */

/* Sign an access token for the session and fill `resp` with it and the
 * refresh token. */
static rpc_status issue_tokens(rpc_call *call, auth_service *svc, const char *user_id,
                               const char *sid, unsigned roles, const char *refresh,
                               Panthera__Auth__V1__Tokens *resp)
{
	struct auth_private *p = svc->priv;
	auth_claims c = {0};
	snprintf(c.sub, sizeof(c.sub), "%s", user_id);
	snprintf(c.sid, sizeof(c.sid), "%s", sid);
	c.iat = c.nbf = (int64_t)time(NULL);
	c.exp = c.iat + p->access_ttl_s;
	c.roles = roles | AUTH_ROLE_USER;
	char jwt[2048];
	rpc_status st = auth_jwt_sign(p->keys, p->issuer, &c, jwt, sizeof(jwt));
	if (st != RPC_STATUS_OK) {
		log_write(LOG_ERROR, request_id(call), "auth.sign", "cannot sign a token: %s",
		          rpc_status_name(st));
		return rpc_call_error(call, RPC_STATUS_INTERNAL, "cannot issue tokens");
	}
	resp->access_token = auth_strdup(call, jwt);
	resp->refresh_token = auth_strdup(call, refresh);
	resp->token_type = auth_strdup(call, "Bearer");
	resp->expires_in = (int32_t)(p->access_ttl_s > INT32_MAX ? INT32_MAX : p->access_ttl_s);
	OPENSSL_cleanse(jwt, sizeof(jwt));
	if (resp->access_token == NULL || resp->refresh_token == NULL || resp->token_type == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	return RPC_STATUS_OK;
}

/* ---- RegisterUser ---- */

typedef struct register_op {
	rpc_call *call;
	const char *id, *email, *hash, *first_name, *last_name;
	Panthera__Users__V1__User *resp;
} register_op;

static rpc_status tx_register(db_conn *c, void *arg)
{
	register_op *op = arg;
	PGresult *u;
	rpc_status st = auth_store_insert_user(c, op->id, op->email, op->hash, op->first_name,
	                                       op->last_name, AUTH_ROLE_USER, &u);
	if (st != RPC_STATUS_OK)
		return st;
	st = auth_publish_registered(c, u);
	if (st == RPC_STATUS_OK)
		st = auth_user_fill(op->call, op->resp, u, 0);
	PQclear(u);
	return st;
}

/* Record a violation; remember the first for the status message. */
static void violation(rpc_call *call, const char **field, const char **why, const char *f,
                      const char *w)
{
	rpc_call_add_field_violation(call, f, w);
	if (*field == NULL) {
		*field = f;
		*why = w;
	}
}

static rpc_status register_user(rpc_call *call, const Panthera__Auth__V1__RegisterUserRequest *req,
                                Panthera__Users__V1__User *resp, void *user)
{
	auth_service *svc = user;
	const char *field = NULL, *why = NULL, *w;
	if ((w = auth_check_email(req->email)) != NULL)
		violation(call, &field, &why, "email", w);
	if ((w = auth_check_password(req->password)) != NULL)
		violation(call, &field, &why, "password", w);
	if (!auth_text_ok(req->first_name, 1, AUTH_NAME_MAX))
		violation(call, &field, &why, "first_name", "must be 1 to 100 characters");
	if (!auth_text_ok(req->last_name, 1, AUTH_NAME_MAX))
		violation(call, &field, &why, "last_name", "must be 1 to 100 characters");
	if (field != NULL) {
		wipe_request_string(req->password);
		return rpc_call_error(call, RPC_STATUS_INVALID_ARGUMENT, "%s %s", field, why);
	}
	char hash[AUTH_PW_HASH_MAX], id[ID_UUID_LEN + 1];
	rpc_status st = auth_pw_hash(req->password, &svc->priv->pw, hash, sizeof(hash));
	wipe_request_string(req->password);
	if (st == RPC_STATUS_OK)
		st = id_uuid4(id);
	if (st != RPC_STATUS_OK) {
		OPENSSL_cleanse(hash, sizeof(hash));
		return rpc_call_error(call, st, "cannot register the account now");
	}
	register_op op = {call, id, req->email, hash, req->first_name, req->last_name, resp};
	st = db_transaction(svc->pool, 0, auth_db_wait_ms(call), tx_register, &op);
	OPENSSL_cleanse(hash, sizeof(hash));
	if (st == RPC_STATUS_ALREADY_EXISTS) {
		rpc_call_set_error_reason(call, "EMAIL_TAKEN", NULL);
		return rpc_call_error(call, st, "an account with this email already exists");
	}
	if (st != RPC_STATUS_OK)
		return auth_db_failed(call, st);
	log_write(LOG_INFO, request_id(call), "auth.register", "user %s registered", id);
	return RPC_STATUS_OK;
}

/* ---- Login ---- */

typedef struct login_op {
	const char *email;
	auth_login_row row;
	int found;
} login_op;

static rpc_status tx_find_login(db_conn *c, void *arg)
{
	login_op *op = arg;
	rpc_status st = auth_store_find_login(c, op->email, &op->row);
	op->found = st == RPC_STATUS_OK;
	return st == RPC_STATUS_NOT_FOUND ? RPC_STATUS_OK : st;
}

typedef struct session_op {
	const char *user_id;
	const char *old_hash, *new_hash; /* a parameter upgrade of the password, or NULL */
	unsigned ttl_s;
	char sid[ID_UUID_LEN + 1];
	char token[AUTH_TOKEN_LEN + 1];
} session_op;

static rpc_status tx_open_session(db_conn *c, void *arg)
{
	session_op *op = arg;
	char hash[AUTH_BYTEA_HEX_LEN + 1];
	rpc_status st = id_uuid4(op->sid);
	if (st == RPC_STATUS_OK)
		st = auth_token_new(op->token, hash);
	if (st == RPC_STATUS_OK)
		st = auth_store_session_open(c, op->sid, op->user_id, hash, op->ttl_s);
	if (st == RPC_STATUS_OK && op->new_hash != NULL)
		st = auth_store_upgrade_hash(c, op->user_id, op->old_hash, op->new_hash);
	return st;
}

static rpc_status login(rpc_call *call, const Panthera__Auth__V1__LoginRequest *req,
                        Panthera__Auth__V1__Tokens *resp, void *user)
{
	auth_service *svc = user;
	struct auth_private *p = svc->priv;
	/* Text no account can have is refused after the same work as a wrong
	 * password, so that nothing tells the cases apart. */
	int plausible = req->email != NULL && req->password != NULL &&
	                strnlen(req->email, MAX_LOGIN_EMAIL_BYTES + 1) <= MAX_LOGIN_EMAIL_BYTES &&
	                strnlen(req->password, MAX_LOGIN_PW_BYTES + 1) <= MAX_LOGIN_PW_BYTES;
	login_op op = {.email = plausible ? req->email : ""};
	rpc_status st = RPC_STATUS_OK;
	if (plausible)
		st = db_transaction(svc->pool, 0, auth_db_wait_ms(call), tx_find_login, &op);
	if (st != RPC_STATUS_OK) {
		wipe_request_string(req->password);
		return auth_db_failed(call, st);
	}
	const char *stored =
	    op.found && op.row.password_hash[0] ? op.row.password_hash : p->dummy_hash;
	int match = 0, outdated = 0;
	st = auth_pw_verify(plausible ? req->password : "", stored, &p->pw, &match, &outdated);
	if (st == RPC_STATUS_INVALID_ARGUMENT) {
		log_write(LOG_ERROR, request_id(call), "auth.login",
		          "stored password hash of user %s is unreadable", op.row.id);
		match = 0;
	} else if (st != RPC_STATUS_OK) {
		wipe_request_string(req->password);
		OPENSSL_cleanse(&op.row, sizeof(op.row));
		return rpc_call_error(call, RPC_STATUS_UNAVAILABLE, "cannot check passwords now");
	}
	if (!op.found || !match || !op.row.active) {
		wipe_request_string(req->password);
		OPENSSL_cleanse(&op.row, sizeof(op.row));
		log_write(LOG_DEBUG, request_id(call), "auth.login", "login refused");
		rpc_call_set_error_reason(call, "INVALID_CREDENTIALS", NULL);
		return rpc_call_error(call, RPC_STATUS_UNAUTHENTICATED, "%s", bad_credentials);
	}
	/* Stored with other parameters: store a hash with today's. */
	char upgraded[AUTH_PW_HASH_MAX] = "";
	if (outdated &&
	    auth_pw_hash(req->password, &p->pw, upgraded, sizeof(upgraded)) != RPC_STATUS_OK)
		upgraded[0] = '\0'; /* keep the old one; the login still succeeds */
	wipe_request_string(req->password);

	session_op so = {.user_id = op.row.id,
	                 .old_hash = op.row.password_hash,
	                 .new_hash = upgraded[0] ? upgraded : NULL,
	                 .ttl_s = p->refresh_ttl_s};
	st = db_transaction(svc->pool, 0, auth_db_wait_ms(call), tx_open_session, &so);
	OPENSSL_cleanse(upgraded, sizeof(upgraded));
	if (st == RPC_STATUS_NOT_FOUND) { /* deactivated in between */
		rpc_call_set_error_reason(call, "INVALID_CREDENTIALS", NULL);
		st = rpc_call_error(call, RPC_STATUS_UNAUTHENTICATED, "%s", bad_credentials);
	} else if (st != RPC_STATUS_OK) {
		st = auth_db_failed(call, st);
	} else {
		st = issue_tokens(call, svc, op.row.id, so.sid, op.row.roles, so.token, resp);
		if (st == RPC_STATUS_OK)
			log_write(LOG_INFO, request_id(call), "auth.login",
			          "user %s logged in (session %s)", op.row.id, so.sid);
	}
	OPENSSL_cleanse(so.token, sizeof(so.token));
	OPENSSL_cleanse(&op.row, sizeof(op.row));
	return st;
}

/* ---- Refresh ---- */

typedef enum refresh_outcome { REFRESH_OK, REFRESH_INVALID, REFRESH_REUSED } refresh_outcome;

typedef struct refresh_op {
	const char *hash;
	unsigned ttl_s;
	auth_session_row row;
	refresh_outcome outcome;
	char new_id[ID_UUID_LEN + 1];
	char token[AUTH_TOKEN_LEN + 1];
} refresh_op;

/* Commits in every outcome: a detected reuse must revoke the family even
 * though the caller is refused. */
static rpc_status tx_refresh(db_conn *c, void *arg)
{
	refresh_op *op = arg;
	op->outcome = REFRESH_INVALID;
	rpc_status st = auth_store_session_lock(c, op->hash, &op->row);
	if (st == RPC_STATUS_NOT_FOUND)
		return RPC_STATUS_OK;
	if (st != RPC_STATUS_OK)
		return st;
	if (op->row.replaced) {
		op->outcome = REFRESH_REUSED;
		return auth_store_revoke_family(c, op->row.family_id);
	}
	if (op->row.revoked || op->row.expired || !op->row.user_active)
		return RPC_STATUS_OK;
	char hash[AUTH_BYTEA_HEX_LEN + 1];
	st = id_uuid4(op->new_id);
	if (st == RPC_STATUS_OK)
		st = auth_token_new(op->token, hash);
	if (st == RPC_STATUS_OK)
		st = auth_store_session_rotate(c, &op->row, op->new_id, hash, op->ttl_s);
	if (st == RPC_STATUS_OK)
		op->outcome = REFRESH_OK;
	return st;
}

static rpc_status refresh(rpc_call *call, const Panthera__Auth__V1__RefreshRequest *req,
                          Panthera__Auth__V1__Tokens *resp, void *user)
{
	auth_service *svc = user;
	char hash[AUTH_BYTEA_HEX_LEN + 1];
	if (auth_token_hash(req->refresh_token, hash) != RPC_STATUS_OK) {
		rpc_call_set_error_reason(call, "INVALID_REFRESH_TOKEN", NULL);
		return rpc_call_error(call, RPC_STATUS_UNAUTHENTICATED, "%s", bad_refresh);
	}
	wipe_request_string(req->refresh_token);
	refresh_op op = {.hash = hash, .ttl_s = svc->priv->refresh_ttl_s};
	rpc_status st = db_transaction(svc->pool, 0, auth_db_wait_ms(call), tx_refresh, &op);
	if (st != RPC_STATUS_OK) {
		st = auth_db_failed(call, st);
	} else if (op.outcome != REFRESH_OK) {
		if (op.outcome == REFRESH_REUSED)
			log_write(LOG_WARN, request_id(call), "auth.refresh_reuse",
			          "a rotated refresh token of session %s (user %s) was presented "
			          "again: session revoked",
			          op.row.family_id, op.row.user_id);
		rpc_call_set_error_reason(call, "INVALID_REFRESH_TOKEN", NULL);
		st = rpc_call_error(call, RPC_STATUS_UNAUTHENTICATED, "%s", bad_refresh);
	} else {
		st = issue_tokens(call, svc, op.row.user_id, op.row.family_id, op.row.roles,
		                  op.token, resp);
	}
	OPENSSL_cleanse(op.token, sizeof(op.token));
	return st;
}

/* ---- Logout ---- */

typedef struct logout_op {
	const char *hash;
	caller who;
	int refused;
} logout_op;

static rpc_status tx_logout(db_conn *c, void *arg)
{
	logout_op *op = arg;
	auth_session_row row;
	rpc_status st = auth_store_session_lock(c, op->hash, &row);
	if (st == RPC_STATUS_NOT_FOUND)
		return RPC_STATUS_OK; /* nothing to end */
	if (st != RPC_STATUS_OK)
		return st;
	if (!caller_may_see(&op->who, row.user_id)) {
		op->refused = 1;
		return RPC_STATUS_OK;
	}
	return auth_store_revoke_family(c, row.family_id);
}

static rpc_status logout(rpc_call *call, const Panthera__Auth__V1__LogoutRequest *req,
                         Panthera__Auth__V1__LogoutResponse *resp, void *user)
{
	(void)resp;
	auth_service *svc = user;
	logout_op op = {0};
	caller_get(call, &op.who);
	if (op.who.id == NULL)
		return rpc_call_error(call, RPC_STATUS_UNAUTHENTICATED, "no caller identity");
	char hash[AUTH_BYTEA_HEX_LEN + 1];
	if (auth_token_hash(req->refresh_token, hash) != RPC_STATUS_OK)
		return auth_bad_field(call, "refresh_token", "must be a refresh token");
	wipe_request_string(req->refresh_token);
	op.hash = hash;
	rpc_status st = db_transaction(svc->pool, 0, auth_db_wait_ms(call), tx_logout, &op);
	if (st != RPC_STATUS_OK)
		return auth_db_failed(call, st);
	/* Another account's token is, for this caller, no session of theirs:
	 * the same success as an unknown or ended one, so the answer tells
	 * nothing about other accounts' tokens, and nothing is ended. */
	if (op.refused)
		log_write(LOG_INFO, request_id(call), "auth.logout",
		          "logout with another account's refresh token: nothing ended");
	return RPC_STATUS_OK;
}

/* ---- GetJwks ---- */

typedef struct jwks_op {
	rpc_call *call;
	Panthera__Auth__V1__GetJwksResponse *resp;
} jwks_op;

static rpc_status add_jwk(const char *kid, const char *x, void *arg)
{
	jwks_op *op = arg;
	Panthera__Auth__V1__Jwk *k = rpc_call_alloc(op->call, sizeof(*k));
	if (k == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	panthera__auth__v1__jwk__init(k);
	k->kty = auth_strdup(op->call, "OKP");
	k->use = auth_strdup(op->call, "sig");
	k->alg = auth_strdup(op->call, "EdDSA");
	k->crv = auth_strdup(op->call, "Ed25519");
	k->kid = auth_strdup(op->call, kid);
	k->x = auth_strdup(op->call, x);
	if (k->kty == NULL || k->use == NULL || k->alg == NULL || k->crv == NULL ||
	    k->kid == NULL || k->x == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	op->resp->keys[op->resp->n_keys++] = k;
	return RPC_STATUS_OK;
}

static rpc_status get_jwks(rpc_call *call, const Panthera__Auth__V1__GetJwksRequest *req,
                           Panthera__Auth__V1__GetJwksResponse *resp, void *user)
{
	(void)req;
	auth_service *svc = user;
	resp->n_keys = 0;
	resp->keys = rpc_call_alloc(call, AUTH_MAX_KEYS * sizeof(*resp->keys));
	if (resp->keys == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	jwks_op op = {call, resp};
	return auth_keyring_each(svc->priv->keys, add_jwk, &op);
}

/* ---- RequestPasswordReset ---- */

typedef struct reset_op {
	const char *email;
	int made;
	char user_id[ID_UUID_LEN + 1];
	char to[AUTH_EMAIL_MAX + 1];
	char token[AUTH_TOKEN_LEN + 1];
} reset_op;

static rpc_status tx_reset_request(db_conn *c, void *arg)
{
	reset_op *op = arg;
	PGresult *u;
	rpc_status st = auth_store_get_user_by_email(c, op->email, &u);
	if (st == RPC_STATUS_NOT_FOUND)
		return RPC_STATUS_OK;
	if (st != RPC_STATUS_OK)
		return st;
	int active = strcmp(PQgetvalue(u, 0, AUTH_USER_STATUS), "ACTIVE") == 0;
	snprintf(op->user_id, sizeof(op->user_id), "%s", PQgetvalue(u, 0, AUTH_USER_ID));
	snprintf(op->to, sizeof(op->to), "%s", PQgetvalue(u, 0, AUTH_USER_EMAIL));
	PQclear(u);
	if (!active)
		return RPC_STATUS_OK;
	char hash[AUTH_BYTEA_HEX_LEN + 1];
	long long expires = 0;
	st = auth_token_new(op->token, hash);
	if (st == RPC_STATUS_OK)
		st = auth_store_reset_create(c, op->user_id, hash, AUTH_RESET_TTL_S, &expires);
	if (st != RPC_STATUS_OK)
		return st;
	Google__Protobuf__Timestamp at = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
	at.seconds = expires;
	Panthera__Events__V1__PasswordResetRequested ev =
	    PANTHERA__EVENTS__V1__PASSWORD_RESET_REQUESTED__INIT;
	ev.user_id = op->user_id;
	ev.expires_at = &at;
	st = auth_publish(c, "panthera.events.v1.PasswordResetRequested", op->user_id, &ev.base);
	if (st == RPC_STATUS_OK)
		op->made = 1;
	return st;
}

typedef struct mail_ctx {
	char user_id[ID_UUID_LEN + 1];
} mail_ctx;

static void reset_mail_done(rpc_reply *reply, void *arg)
{
	mail_ctx *m = arg;
	rpc_status st = rpc_reply_status(reply);
	if (st == RPC_STATUS_OK)
		log_write(LOG_INFO, NULL, "auth.password_reset", "reset email sent to user %s",
		          m->user_id);
	else
		log_write(LOG_WARN, NULL, "auth.password_reset",
		          "reset email to user %s not sent: %s", m->user_id, rpc_status_name(st));
	rpc_reply_free(reply);
	free(m);
}

/* Hand the token to the account's mailbox, and to nothing that keeps it. */
static void deliver_reset(rpc_call *call, auth_service *svc, const reset_op *op)
{
	if (svc->reset_token_sink != NULL) /* tests */
		svc->reset_token_sink(svc->reset_token_sink_arg, op->user_id, op->to, op->token);
	if (svc->notifications == NULL) {
		log_write(LOG_INFO, request_id(call), "auth.password_reset",
		          "password reset for user %s: no mailer configured, the email with the "
		          "token was not sent (the token is never logged)",
		          op->user_id);
		return;
	}
	char body[512];
	snprintf(body, sizeof(body),
	         "Someone asked to reset the password of your Panthera account.\n\n"
	         "Your reset token: %s\n\n"
	         "It works once, within 30 minutes. If you did not ask for it, ignore this "
	         "email: your password stays as it is.\n",
	         op->token);
	Panthera__Notifications__V1__SendEmailRequest mail =
	    PANTHERA__NOTIFICATIONS__V1__SEND_EMAIL_REQUEST__INIT;
	mail.to = (char *)op->to;
	mail.subject = "Reset your Panthera password";
	mail.body = body;
	const char *rid = request_id(call);
	rpc_metadata_entry md[1] = {{"x-request-id", rid}};
	rpc_call_opts opts = {.timeout_ms = 10000, .metadata = md, .n_metadata = rid != NULL};
	mail_ctx *m = calloc(1, sizeof(*m));
	rpc_status st = RPC_STATUS_RESOURCE_EXHAUSTED;
	if (m != NULL) {
		snprintf(m->user_id, sizeof(m->user_id), "%s", op->user_id);
		/* Asynchronous: the reply does not wait for the mailer, so its
		 * timing says little about whether the account exists. */
		st = panthera_notifications_v1_notification_service_send_email_async(
		    svc->notifications, &mail, &opts, reset_mail_done, m);
		if (st != RPC_STATUS_OK)
			free(m);
	}
	OPENSSL_cleanse(body, sizeof(body));
	if (st != RPC_STATUS_OK)
		log_write(LOG_WARN, rid, "auth.password_reset",
		          "reset email to user %s not sent: %s", op->user_id, rpc_status_name(st));
}

static rpc_status request_password_reset(rpc_call *call,
                                         const Panthera__Auth__V1__RequestPasswordResetRequest *req,
                                         Panthera__Auth__V1__RequestPasswordResetResponse *resp,
                                         void *user)
{
	(void)resp;
	auth_service *svc = user;
	const char *why = auth_check_email(req->email);
	if (why != NULL)
		return auth_bad_field(call, "email", why);
	reset_op op = {.email = req->email};
	rpc_status st = db_transaction(svc->pool, 0, auth_db_wait_ms(call), tx_reset_request, &op);
	if (st == RPC_STATUS_OK && op.made)
		deliver_reset(call, svc, &op);
	OPENSSL_cleanse(op.token, sizeof(op.token));
	if (st != RPC_STATUS_OK)
		return auth_db_failed(call, st);
	return RPC_STATUS_OK; /* the same answer whether or not the account exists */
}

/* ---- ConfirmPasswordReset ---- */

typedef struct confirm_op {
	const char *token_hash, *password_hash;
	char user_id[ID_UUID_LEN + 1];
} confirm_op;

static rpc_status tx_confirm_reset(db_conn *c, void *arg)
{
	confirm_op *op = arg;
	rpc_status st = auth_store_reset_consume(c, op->token_hash, op->user_id);
	if (st == RPC_STATUS_OK)
		st = auth_store_set_password(c, op->user_id, op->password_hash);
	if (st == RPC_STATUS_OK)
		st = auth_store_revoke_user(c, op->user_id);
	return st;
}

static rpc_status confirm_password_reset(rpc_call *call,
                                         const Panthera__Auth__V1__ConfirmPasswordResetRequest *req,
                                         Panthera__Auth__V1__ConfirmPasswordResetResponse *resp,
                                         void *user)
{
	(void)resp;
	auth_service *svc = user;
	char token_hash[AUTH_BYTEA_HEX_LEN + 1], pw_hash[AUTH_PW_HASH_MAX];
	rpc_status st;
	if (auth_token_hash(req->token, token_hash) != RPC_STATUS_OK) {
		wipe_request_string(req->new_password);
		rpc_call_add_field_violation(call, "token", "is not a valid reset token");
		rpc_call_set_error_reason(call, "INVALID_RESET_TOKEN", NULL);
		return rpc_call_error(call, RPC_STATUS_INVALID_ARGUMENT, "%s", bad_reset);
	}
	wipe_request_string(req->token);
	const char *why = auth_check_password(req->new_password);
	if (why != NULL) {
		wipe_request_string(req->new_password);
		return auth_bad_field(call, "new_password", why);
	}
	st = auth_pw_hash(req->new_password, &svc->priv->pw, pw_hash, sizeof(pw_hash));
	wipe_request_string(req->new_password);
	if (st != RPC_STATUS_OK)
		return rpc_call_error(call, st, "cannot set the password now");
	confirm_op op = {.token_hash = token_hash, .password_hash = pw_hash};
	st = db_transaction(svc->pool, 0, auth_db_wait_ms(call), tx_confirm_reset, &op);
	OPENSSL_cleanse(pw_hash, sizeof(pw_hash));
	if (st == RPC_STATUS_NOT_FOUND) {
		rpc_call_set_error_reason(call, "INVALID_RESET_TOKEN", NULL);
		return rpc_call_error(call, RPC_STATUS_INVALID_ARGUMENT, "%s", bad_reset);
	}
	if (st != RPC_STATUS_OK)
		return auth_db_failed(call, st);
	log_write(LOG_INFO, request_id(call), "auth.password_reset",
	          "password of user %s reset; every session revoked", op.user_id);
	return RPC_STATUS_OK;
}

/* ---- EnsureAdmin and the bootstrap ---- */

typedef struct admin_op {
	rpc_call *call;
	const auth_service *svc;
	const char *email, *password;
	const char *hash; /* of `password`, for a new account */
	char id[ID_UUID_LEN + 1];
	int exists, created, promoted, refused;
	char user_id[ID_UUID_LEN + 1];
	Panthera__Users__V1__User *resp;
} admin_op;

static rpc_status admin_reply(admin_op *op, const PGresult *u)
{
	snprintf(op->user_id, sizeof(op->user_id), "%s", PQgetvalue(u, 0, AUTH_USER_ID));
	if (op->call == NULL || op->resp == NULL)
		return RPC_STATUS_OK;
	return auth_user_fill(op->call, op->resp, u, 0);
}

/*
 * If the account of the email exists (then op->exists), make it an admin,
 * but only when the password given is its own: whoever registered the
 * address first must not be handed the ADMIN role by a restart
 * (op->refused). An account that already is an admin is left as it is,
 * whatever its password became since.
 */
static rpc_status tx_admin_promote(db_conn *c, void *arg)
{
	admin_op *op = arg;
	auth_login_row row;
	rpc_status st = auth_store_find_login(c, op->email, &row);
	if (st == RPC_STATUS_NOT_FOUND)
		return RPC_STATUS_OK;
	if (st != RPC_STATUS_OK)
		return st;
	op->exists = 1;
	int match = 0;
	if (!(row.roles & AUTH_ROLE_ADMIN)) {
		st = auth_pw_verify(op->password, row.password_hash, &op->svc->priv->pw, &match,
		                    NULL);
		if (st == RPC_STATUS_INVALID_ARGUMENT)
			st = RPC_STATUS_OK; /* an unreadable hash matches nothing */
	}
	OPENSSL_cleanse(&row, sizeof(row));
	if (st != RPC_STATUS_OK)
		return st;
	PGresult *u;
	if ((st = auth_store_get_user_by_email(c, op->email, &u)) != RPC_STATUS_OK)
		return st;
	unsigned roles = auth_roles_from_text(PQgetvalue(u, 0, AUTH_USER_ROLES));
	if (!(roles & AUTH_ROLE_ADMIN)) {
		if (!match) {
			PQclear(u);
			op->refused = 1;
			return RPC_STATUS_PERMISSION_DENIED;
		}
		char id[ID_UUID_LEN + 1];
		snprintf(id, sizeof(id), "%s", PQgetvalue(u, 0, AUTH_USER_ID));
		PQclear(u);
		auth_user_change ch = {.set_roles = 1, .roles = roles | AUTH_ROLE_ADMIN};
		if ((st = auth_store_update_user(c, id, &ch, &u)) != RPC_STATUS_OK)
			return st;
		op->promoted = 1;
	}
	st = admin_reply(op, u);
	PQclear(u);
	return st;
}

/* Create it; when a concurrent registration took the email, op->exists. */
static rpc_status tx_admin_create(db_conn *c, void *arg)
{
	admin_op *op = arg;
	PGresult *u;
	rpc_status st = auth_store_insert_admin(c, op->id, op->email, op->hash, &u);
	if (st == RPC_STATUS_NOT_FOUND) {
		op->exists = 1;
		return RPC_STATUS_OK;
	}
	if (st != RPC_STATUS_OK)
		return st;
	op->created = 1;
	st = auth_publish_registered(c, u);
	if (st == RPC_STATUS_OK)
		st = admin_reply(op, u);
	PQclear(u);
	return st;
}

rpc_status auth_ensure_admin(auth_service *svc, rpc_call *call, const char *email,
                             const char *password, Panthera__Users__V1__User *resp)
{
	const char *field = NULL, *why = NULL, *w;
	if ((w = auth_check_email(email)) != NULL) {
		field = "email";
		why = w;
	} else if ((w = auth_check_password(password)) != NULL) {
		field = "password";
		why = w;
	}
	if (field != NULL) {
		if (call != NULL)
			return auth_bad_field(call, field, why);
		log_write(LOG_ERROR, NULL, "auth.bootstrap", "bootstrap admin: %s %s", field, why);
		return RPC_STATUS_INVALID_ARGUMENT;
	}
	uint32_t wait = call ? auth_db_wait_ms(call) : 10000;
	admin_op op = {
	    .call = call, .svc = svc, .email = email, .password = password, .resp = resp};
	rpc_status st = db_transaction(svc->pool, 0, wait, tx_admin_promote, &op);
	if (st == RPC_STATUS_OK && !op.exists) {
		char hash[AUTH_PW_HASH_MAX];
		st = auth_pw_hash(password, &svc->priv->pw, hash, sizeof(hash));
		if (st == RPC_STATUS_OK)
			st = id_uuid4(op.id);
		if (st == RPC_STATUS_OK) {
			op.hash = hash;
			st = db_transaction(svc->pool, 0, wait, tx_admin_create, &op);
		}
		OPENSSL_cleanse(hash, sizeof(hash));
		/* registered meanwhile: the same password check as above */
		if (st == RPC_STATUS_OK && op.exists)
			st = db_transaction(svc->pool, 0, wait, tx_admin_promote, &op);
	}
	const char *rid = call ? request_id(call) : NULL;
	if (op.refused) {
		log_write(LOG_ERROR, rid, "auth.bootstrap",
		          "an account of %s exists and the admin password given is not its own:"
		          " not promoted",
		          email);
		if (call == NULL)
			return RPC_STATUS_PERMISSION_DENIED;
		rpc_call_set_error_reason(call, "ACCOUNT_EXISTS", NULL);
		return rpc_call_error(call, RPC_STATUS_PERMISSION_DENIED,
		                      "an account with this email exists and the password does not"
		                      " match; it was not made an admin");
	}
	if (st != RPC_STATUS_OK) {
		log_write(LOG_ERROR, rid, "auth.bootstrap", "cannot ensure the admin account: %s",
		          rpc_status_name(st));
		return call ? auth_db_failed(call, st) : st;
	}
	log_write(LOG_INFO, rid, "auth.bootstrap", "admin account %s %s", op.user_id,
	          op.created    ? "created"
	          : op.promoted ? "given the ADMIN role"
	                        : "already an admin");
	return RPC_STATUS_OK;
}

static rpc_status ensure_admin(rpc_call *call, const Panthera__Auth__V1__EnsureAdminRequest *req,
                               Panthera__Users__V1__User *resp, void *user)
{
	rpc_status st = auth_ensure_admin(user, call, req->email, req->password, resp);
	wipe_request_string(req->password);
	return st;
}

/* ---- VerifyToken ---- */

static rpc_status verify_token(rpc_call *call, const Panthera__Auth__V1__VerifyTokenRequest *req,
                               Panthera__Auth__V1__VerifyTokenResponse *resp, void *user)
{
	auth_service *svc = user;
	auth_claims c;
	const char *why = NULL;
	if (auth_jwt_verify(svc->priv->keys, svc->priv->issuer, req->access_token,
	                    (int64_t)time(NULL), &c, &why) != RPC_STATUS_OK) {
		log_write(LOG_DEBUG, request_id(call), "auth.verify", "token refused: %s", why);
		rpc_call_set_error_reason(call, "INVALID_ACCESS_TOKEN", NULL);
		return rpc_call_error(call, RPC_STATUS_UNAUTHENTICATED,
		                      "access token is not valid");
	}
	resp->user_id = auth_strdup(call, c.sub);
	resp->roles = rpc_call_alloc(call, 2 * sizeof(*resp->roles));
	resp->expires_at = rpc_call_alloc(call, sizeof(*resp->expires_at));
	if (resp->user_id == NULL || resp->roles == NULL || resp->expires_at == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	resp->n_roles = 0;
	if (c.roles & AUTH_ROLE_USER)
		resp->roles[resp->n_roles++] = PANTHERA__USERS__V1__ROLE__USER;
	if (c.roles & AUTH_ROLE_ADMIN)
		resp->roles[resp->n_roles++] = PANTHERA__USERS__V1__ROLE__ADMIN;
	google__protobuf__timestamp__init(resp->expires_at);
	resp->expires_at->seconds = c.exp;
	return RPC_STATUS_OK;
}

const panthera_auth_v1_auth_service_handlers auth_handlers = {
    .register_user = register_user,
    .login = login,
    .refresh = refresh,
    .logout = logout,
    .get_jwks = get_jwks,
    .request_password_reset = request_password_reset,
    .confirm_password_reset = confirm_password_reset,
    .ensure_admin = ensure_admin,
    .verify_token = verify_token,
};
