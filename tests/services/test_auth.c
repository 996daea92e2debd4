/*
 * test_auth.c - AuthService and UserService through their generated client
 * stubs, over the RPC runtime, on a real PostgreSQL: registration, login
 * (a wrong email and a wrong password alike), access tokens checked here
 * with OpenSSL against the JWKS, forged tokens refused, refresh rotation
 * and reuse detection, logout, password reset (single use, expiry, every
 * session revoked, the email through NotificationService), deactivation,
 * owner checks, admin-only fields, addresses with one default, the admin
 * bootstrap, key persistence and rotation, text stored verbatim, and no
 * secret in what the service logs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "../support/pgtest.h"
#include "../support/svctest.h"
#include "auth.h"
#include "panthera/events/v1/events.pb-c.h"
#include "panthera/ids.h"
#include "panthera/log.h"
#include "panthera/notifications/v1/notifications.panthera.h"
#include "panthera/rpc/v1/rpc.pb-c.h"

#define AUTH(x)  panthera_auth_v1_auth_service_##x
#define USERS(x) panthera_users_v1_user_service_##x

/* Cheap scrypt for the suite; production is 15 (tested once below). */
#define TEST_LOG_N 10

static pgtest pg;
static db_pool *pool;
static auth_service svc;
static rpc_server *srv;
static rpc_channel *ch;
static char data_dir[256];
static char admin_id[37];

/* ---- what the test doubles saw ---- */

static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t seen_cv = PTHREAD_COND_INITIALIZER;
static int sink_calls;
static char sink_token[64], sink_user[37], sink_email[256];
static int mails;
static char mail_to[256], mail_body[1024];

/* The test-only reset-token sink of auth_service. */
static void capture_token(void *arg, const char *user_id, const char *email, const char *token)
{
	(void)arg;
	pthread_mutex_lock(&seen_lock);
	sink_calls++;
	snprintf(sink_token, sizeof(sink_token), "%s", token);
	snprintf(sink_user, sizeof(sink_user), "%s", user_id);
	snprintf(sink_email, sizeof(sink_email), "%s", email);
	pthread_mutex_unlock(&seen_lock);
}

static int sinks(void)
{
	pthread_mutex_lock(&seen_lock);
	int n = sink_calls;
	pthread_mutex_unlock(&seen_lock);
	return n;
}

/* A NotificationService double: records SendEmail. */
static rpc_status fake_send_email(rpc_call *call,
                                  const Panthera__Notifications__V1__SendEmailRequest *req,
                                  Panthera__Notifications__V1__SendEmailResponse *resp, void *user)
{
	(void)call;
	(void)resp;
	(void)user;
	pthread_mutex_lock(&seen_lock);
	mails++;
	snprintf(mail_to, sizeof(mail_to), "%s", req->to);
	snprintf(mail_body, sizeof(mail_body), "%s", req->body);
	pthread_cond_broadcast(&seen_cv);
	pthread_mutex_unlock(&seen_lock);
	return RPC_STATUS_OK;
}

static const panthera_notifications_v1_notification_service_handlers fake_mailer = {
    .send_email = fake_send_email,
};

/* Wait (at most 5 s) until `n` emails were sent. */
static int wait_mails(int n)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 5;
	pthread_mutex_lock(&seen_lock);
	while (mails < n) {
		if (pthread_cond_timedwait(&seen_cv, &seen_lock, &until) == ETIMEDOUT)
			break;
	}
	int got = mails;
	pthread_mutex_unlock(&seen_lock);
	return got;
}

/* ---- setup ---- */

/*
 * Stop a server, then free it. rpc_server_destroy() alone stops with no
 * drain time and may close the socket while a worker that has just sent
 * its reply is still inside nng_ctx_send (an nng panic, seen under ASan and
 * load); draining first waits for the running calls and their sends.
 */
static void server_end(rpc_server *s)
{
	rpc_server_stop(s, 2000);
	rpc_server_destroy(s);
}

static int setup(void **state)
{
	(void)state;
	log_set_level(LOG_ERROR);
	if (pgtest_start(&pg) != 0)
		return -1;
	snprintf(data_dir, sizeof(data_dir), "/tmp/panthera-auth-XXXXXX");
	if (mkdtemp(data_dir) == NULL)
		return -1;
	if (svctest_pool(&pool, pg.url, "auth", 8, 1) != RPC_STATUS_OK)
		return -1;
	svc = (auth_service){.pool = pool,
	                     .data_dir = data_dir,
	                     .scrypt_log_n = TEST_LOG_N,
	                     .reset_token_sink = capture_token};
	if (auth_service_init(&svc) != RPC_STATUS_OK)
		return -1;
	if (svctest_server(&srv, 8, 0) != RPC_STATUS_OK ||
	    auth_service_register(srv, &svc) != RPC_STATUS_OK ||
	    panthera_notifications_v1_notification_service_register(srv, &fake_mailer, NULL) !=
	        RPC_STATUS_OK ||
	    svctest_start(srv, "inproc://auth-test", &ch) != RPC_STATUS_OK)
		return -1;
	if (auth_bootstrap_admin(&svc, "root@example.com", "root password 1") != RPC_STATUS_OK)
		return -1;
	db_conn *c;
	PGresult *r;
	if (db_acquire(pool, 2000, &c) != RPC_STATUS_OK)
		return -1;
	rpc_status st =
	    db_exec(c, NULL, "SELECT id FROM users WHERE email = 'root@example.com'", 0, NULL, &r);
	if (st == RPC_STATUS_OK && PQntuples(r) == 1)
		snprintf(admin_id, sizeof(admin_id), "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	db_release(pool, c);
	return admin_id[0] ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	rpc_channel_close(ch);
	server_end(srv);
	auth_service_fini(&svc);
	db_pool_close(pool);
	pgtest_destroy(&pg);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", data_dir);
	if (system(cmd) != 0)
		return -1;
	return 0;
}

/* ---- helpers ---- */

/* Send standard error (where the service logs) to `path` until
 * stderr_back(); returns the saved descriptor. */
static int stderr_to(const char *path)
{
	fflush(stderr);
	int saved = dup(2);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(saved >= 0 && fd >= 0);
	assert_true(dup2(fd, 2) >= 0);
	close(fd);
	return saved;
}

static void stderr_back(int saved)
{
	fflush(stderr);
	assert_true(dup2(saved, 2) >= 0);
	close(saved);
}

/* Serve `s` on a server of its own at `url`, with a channel to it. */
static void serve(auth_service *s, const char *url, rpc_server **server, rpc_channel **channel)
{
	assert_status(rpc_server_create(server, NULL), RPC_STATUS_OK);
	assert_status(auth_service_register(*server, s), RPC_STATUS_OK);
	assert_status(svctest_start(*server, url, channel), RPC_STATUS_OK);
}

/* Call options carrying a caller identity, as the gateway sends it. */
typedef struct as_caller {
	rpc_metadata_entry md[2];
	rpc_call_opts o;
} as_caller;

static const rpc_call_opts *as(as_caller *a, const char *id, int admin)
{
	a->md[0] = (rpc_metadata_entry){"x-caller-id", id};
	a->md[1] = (rpc_metadata_entry){"x-caller-roles", admin ? "USER,ADMIN" : "USER"};
	a->o = (rpc_call_opts){.metadata = a->md, .n_metadata = 2};
	return &a->o;
}

static const rpc_call_opts *as_admin(as_caller *a)
{
	return as(a, admin_id, 1);
}

static void new_email(char *out, size_t cap, const char *tag)
{
	static int n;
	snprintf(out, cap, "%s-%d-%d@Example.com", tag, (int)getpid(), ++n);
}

static rpc_status register_full(const char *email, const char *password, const char *first,
                                const char *last, char id_out[37], rpc_reply **reply_out)
{
	Panthera__Auth__V1__RegisterUserRequest req =
	    PANTHERA__AUTH__V1__REGISTER_USER_REQUEST__INIT;
	req.email = (char *)email;
	req.password = (char *)password;
	req.first_name = (char *)first;
	req.last_name = (char *)last;
	rpc_reply *reply;
	const Panthera__Users__V1__User *u;
	rpc_status st = AUTH(register_user)(ch, &req, NULL, &u, &reply);
	if (st == RPC_STATUS_OK && id_out != NULL)
		snprintf(id_out, 37, "%s", u->id);
	if (reply_out != NULL)
		*reply_out = reply;
	else
		rpc_reply_free(reply);
	return st;
}

/* A new account with this password; its id in id[37], email in email[128]. */
static void new_user(const char *tag, const char *password, char id[37], char email[128])
{
	new_email(email, 128, tag);
	assert_status(register_full(email, password, "Test", tag, id, NULL), RPC_STATUS_OK);
}

typedef struct tokens {
	char access[2048];
	char refresh[64];
} tokens;

static rpc_status login_on(rpc_channel *c, const char *email, const char *password, tokens *t,
                           rpc_reply **reply_out)
{
	Panthera__Auth__V1__LoginRequest req = PANTHERA__AUTH__V1__LOGIN_REQUEST__INIT;
	req.email = (char *)email;
	req.password = (char *)password;
	rpc_reply *reply;
	const Panthera__Auth__V1__Tokens *tk;
	rpc_status st = AUTH(login)(c, &req, NULL, &tk, &reply);
	if (st == RPC_STATUS_OK && t != NULL) {
		snprintf(t->access, sizeof(t->access), "%s", tk->access_token);
		snprintf(t->refresh, sizeof(t->refresh), "%s", tk->refresh_token);
	}
	if (reply_out != NULL)
		*reply_out = reply;
	else
		rpc_reply_free(reply);
	return st;
}

static rpc_status login(const char *email, const char *password, tokens *t)
{
	return login_on(ch, email, password, t, NULL);
}

static rpc_status refresh(const char *token, tokens *t)
{
	Panthera__Auth__V1__RefreshRequest req = PANTHERA__AUTH__V1__REFRESH_REQUEST__INIT;
	req.refresh_token = (char *)token;
	rpc_reply *reply;
	const Panthera__Auth__V1__Tokens *tk;
	rpc_status st = AUTH(refresh)(ch, &req, NULL, &tk, &reply);
	if (st == RPC_STATUS_OK && t != NULL) {
		snprintf(t->access, sizeof(t->access), "%s", tk->access_token);
		snprintf(t->refresh, sizeof(t->refresh), "%s", tk->refresh_token);
	}
	if (st != RPC_STATUS_OK)
		assert_string_equal(rpc_reply_error_reason(reply), "INVALID_REFRESH_TOKEN");
	rpc_reply_free(reply);
	return st;
}

static rpc_status logout(const rpc_call_opts *o, const char *token)
{
	Panthera__Auth__V1__LogoutRequest req = PANTHERA__AUTH__V1__LOGOUT_REQUEST__INIT;
	req.refresh_token = (char *)token;
	rpc_reply *reply;
	rpc_status st = AUTH(logout)(ch, &req, o, NULL, &reply);
	rpc_reply_free(reply);
	return st;
}

static rpc_status verify_on(rpc_channel *c, const char *token, unsigned *roles)
{
	Panthera__Auth__V1__VerifyTokenRequest req = PANTHERA__AUTH__V1__VERIFY_TOKEN_REQUEST__INIT;
	req.access_token = (char *)token;
	rpc_reply *reply;
	const Panthera__Auth__V1__VerifyTokenResponse *v;
	rpc_status st = AUTH(verify_token)(c, &req, NULL, &v, &reply);
	if (st == RPC_STATUS_OK && roles != NULL) {
		*roles = 0;
		for (size_t i = 0; i < v->n_roles; i++)
			*roles |= 1u << v->roles[i];
	}
	rpc_reply_free(reply);
	return st;
}
#define HAS_ADMIN (1u << PANTHERA__USERS__V1__ROLE__ADMIN)
#define HAS_USER  (1u << PANTHERA__USERS__V1__ROLE__USER)

static rpc_status verify(const char *token)
{
	return verify_on(ch, token, NULL);
}

static rpc_status request_reset(const char *email)
{
	Panthera__Auth__V1__RequestPasswordResetRequest req =
	    PANTHERA__AUTH__V1__REQUEST_PASSWORD_RESET_REQUEST__INIT;
	req.email = (char *)email;
	rpc_reply *reply;
	rpc_status st = AUTH(request_password_reset)(ch, &req, NULL, NULL, &reply);
	rpc_reply_free(reply);
	return st;
}

static rpc_status confirm_reset(const char *token, const char *password, char *reason, size_t cap)
{
	Panthera__Auth__V1__ConfirmPasswordResetRequest req =
	    PANTHERA__AUTH__V1__CONFIRM_PASSWORD_RESET_REQUEST__INIT;
	req.token = (char *)token;
	req.new_password = (char *)password;
	rpc_reply *reply;
	rpc_status st = AUTH(confirm_password_reset)(ch, &req, NULL, NULL, &reply);
	if (reason != NULL)
		snprintf(reason, cap, "%s", rpc_reply_error_reason(reply));
	rpc_reply_free(reply);
	return st;
}

static rpc_status get_user(const rpc_call_opts *o, const char *id, rpc_reply **reply_out)
{
	Panthera__Users__V1__GetUserRequest req = PANTHERA__USERS__V1__GET_USER_REQUEST__INIT;
	req.user_id = (char *)id;
	rpc_reply *reply;
	rpc_status st = USERS(get_user)(ch, &req, o, NULL, &reply);
	if (reply_out != NULL)
		*reply_out = reply;
	else
		rpc_reply_free(reply);
	return st;
}

static rpc_status delete_user(const rpc_call_opts *o, const char *id)
{
	Panthera__Users__V1__DeleteUserRequest req = PANTHERA__USERS__V1__DELETE_USER_REQUEST__INIT;
	req.user_id = (char *)id;
	rpc_reply *reply;
	rpc_status st = USERS(delete_user)(ch, &req, o, NULL, &reply);
	rpc_reply_free(reply);
	return st;
}

/* One number from SQL with up to two text parameters. */
static long long sql_num(const char *sql, const char *p1, const char *p2)
{
	db_conn *c;
	PGresult *r;
	const char *p[2] = {p1, p2};
	assert_status(db_acquire(pool, 2000, &c), RPC_STATUS_OK);
	assert_status(db_exec(c, NULL, sql, p2 ? 2 : p1 ? 1 : 0, p, &r), RPC_STATUS_OK);
	long long n = atoll(PQgetvalue(r, 0, 0));
	PQclear(r);
	db_release(pool, c);
	return n;
}

static void sql_text(const char *sql, const char *p1, char *out, size_t cap)
{
	db_conn *c;
	PGresult *r;
	const char *p[1] = {p1};
	assert_status(db_acquire(pool, 2000, &c), RPC_STATUS_OK);
	assert_status(db_exec(c, NULL, sql, p1 ? 1 : 0, p, &r), RPC_STATUS_OK);
	assert_int_equal(PQntuples(r), 1);
	snprintf(out, cap, "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	db_release(pool, c);
}

static void sql_do(const char *sql, const char *p1)
{
	db_conn *c;
	const char *p[1] = {p1};
	assert_status(db_acquire(pool, 2000, &c), RPC_STATUS_OK);
	assert_status(db_exec(c, NULL, sql, p1 ? 1 : 0, p, NULL), RPC_STATUS_OK);
	db_release(pool, c);
}

/* ---- base64url and JWT pieces, done here with OpenSSL alone ---- */

static size_t b64url_decode(const char *in, size_t n, unsigned char *out, size_t cap)
{
	char buf[8192];
	assert_true(n + 4 < sizeof(buf));
	for (size_t i = 0; i < n; i++)
		buf[i] = in[i] == '-' ? '+' : in[i] == '_' ? '/' : in[i];
	size_t m = n;
	while (m % 4)
		buf[m++] = '=';
	buf[m] = '\0';
	assert_true(m / 4 * 3 <= cap);
	int len = EVP_DecodeBlock(out, (unsigned char *)buf, (int)m);
	assert_true(len >= 0);
	return (size_t)len - (m - n);
}

static void b64url_encode(const unsigned char *in, size_t n, char *out)
{
	int len = EVP_EncodeBlock((unsigned char *)out, in, (int)n);
	int o = 0;
	for (int i = 0; i < len && out[i] != '='; i++)
		out[o++] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
	out[o] = '\0';
}

/* Split a JWT into its decoded header and claims (NUL-terminated). */
static void jwt_parts(const char *jwt, char *header, char *claims, size_t cap)
{
	const char *d1 = strchr(jwt, '.');
	assert_non_null(d1);
	const char *d2 = strchr(d1 + 1, '.');
	assert_non_null(d2);
	size_t h = b64url_decode(jwt, (size_t)(d1 - jwt), (unsigned char *)header, cap - 1);
	header[h] = '\0';
	size_t c = b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), (unsigned char *)claims, cap - 1);
	claims[c] = '\0';
}

static long long claim_num(const char *claims, const char *name)
{
	char key[32];
	snprintf(key, sizeof(key), "\"%s\":", name);
	const char *p = strstr(claims, key);
	assert_non_null(p);
	return atoll(p + strlen(key));
}

/* The JWKS: kid and x of key i (newest first); the count. */
static size_t jwks_on(rpc_channel *c, size_t i, char kid[64], char x[64])
{
	Panthera__Auth__V1__GetJwksRequest req = PANTHERA__AUTH__V1__GET_JWKS_REQUEST__INIT;
	rpc_reply *reply;
	const Panthera__Auth__V1__GetJwksResponse *r;
	assert_status(AUTH(get_jwks)(c, &req, NULL, &r, &reply), RPC_STATUS_OK);
	size_t n = r->n_keys;
	assert_true(i < n);
	const Panthera__Auth__V1__Jwk *k = r->keys[i];
	assert_string_equal(k->kty, "OKP");
	assert_string_equal(k->crv, "Ed25519");
	assert_string_equal(k->alg, "EdDSA");
	assert_string_equal(k->use, "sig");
	/* no y member at all (RFC 8037), not an empty one */
	assert_int_equal(k->ec_coordinate_case, PANTHERA__AUTH__V1__JWK__EC_COORDINATE__NOT_SET);
	assert_int_equal(strlen(k->kid), 16);
	assert_int_equal(strlen(k->x), 43);
	snprintf(kid, 64, "%s", k->kid);
	snprintf(x, 64, "%s", k->x);
	rpc_reply_free(reply);
	return n;
}

/* Verify the signature of `jwt` with the JWKS key `x`. */
static int signature_ok(const char *jwt, const char *x)
{
	unsigned char pub[64], sig[128];
	size_t pn = b64url_decode(x, strlen(x), pub, sizeof(pub));
	assert_int_equal(pn, 32);
	const char *d2 = strrchr(jwt, '.');
	size_t sn = b64url_decode(d2 + 1, strlen(d2 + 1), sig, sizeof(sig));
	EVP_PKEY *k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, pn);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	assert_non_null(k);
	assert_non_null(md);
	int ok = EVP_DigestVerifyInit(md, NULL, NULL, NULL, k) == 1 &&
	         EVP_DigestVerify(md, sig, sn, (const unsigned char *)jwt, (size_t)(d2 - jwt)) == 1;
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(k);
	return ok;
}

/* The private key of `kid`, read from the data folder as the service wrote it. */
static EVP_PKEY *signing_key(const char *kid)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/keys/%s.pem", data_dir, kid);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	assert_non_null(k);
	return k;
}

/* A token of our own making: header and claims as given, signed with `key`
 * (EdDSA), with an HMAC of `hmac_key` (HS256), or unsigned. */
static void forge(const char *header, const char *claims, EVP_PKEY *key, const char *hmac_key,
                  char *out, size_t cap)
{
	char h[1024], c[2048], s[256] = "";
	b64url_encode((const unsigned char *)header, strlen(header), h);
	b64url_encode((const unsigned char *)claims, strlen(claims), c);
	char input[4096];
	snprintf(input, sizeof(input), "%s.%s", h, c);
	if (key != NULL) {
		unsigned char sig[64];
		size_t sn = sizeof(sig);
		EVP_MD_CTX *md = EVP_MD_CTX_new();
		assert_int_equal(EVP_DigestSignInit(md, NULL, NULL, NULL, key), 1);
		assert_int_equal(
		    EVP_DigestSign(md, sig, &sn, (const unsigned char *)input, strlen(input)), 1);
		EVP_MD_CTX_free(md);
		b64url_encode(sig, sn, s);
	} else if (hmac_key != NULL) {
		unsigned char mac[32];
		unsigned int mn = sizeof(mac);
		HMAC(EVP_sha256(), hmac_key, (int)strlen(hmac_key), (const unsigned char *)input,
		     strlen(input), mac, &mn);
		b64url_encode(mac, mn, s);
	}
	snprintf(out, cap, "%s.%s", input, s);
}

/* ---- tests ---- */

static void test_register(void **state)
{
	(void)state;
	char email[128], id[37];
	new_email(email, sizeof(email), "Reg");
	rpc_reply *reply;
	assert_status(register_full(email, "a fine password", "Ada", "Lovelace", id, &reply),
	              RPC_STATUS_OK);
	const Panthera__Users__V1__User *u = AUTH(register_user_response)(reply);
	assert_true(id_is_uuid(u->id));
	char lower[128];
	for (size_t i = 0; i <= strlen(email); i++)
		lower[i] = (char)(email[i] >= 'A' && email[i] <= 'Z' ? email[i] + 32 : email[i]);
	assert_string_equal(u->email, lower);
	assert_string_equal(u->first_name, "Ada");
	assert_int_equal(u->n_roles, 1);
	assert_int_equal(u->roles[0], PANTHERA__USERS__V1__ROLE__USER);
	assert_int_equal(u->status, PANTHERA__USERS__V1__USER_STATUS__ACTIVE);
	assert_non_null(u->created_at);
	assert_true(u->created_at->seconds > 1700000000);
	rpc_reply_free(reply);

	/* stored as a scrypt string, never the password */
	char hash[256];
	sql_text("SELECT password_hash FROM users WHERE id = $1", id, hash, sizeof(hash));
	assert_true(strncmp(hash, "$scrypt$ln=10,r=8,p=1$", 22) == 0);
	assert_null(strstr(hash, "a fine password"));
	assert_int_equal(sql_num("SELECT count(*) FROM outbox WHERE type ="
	                         " 'panthera.events.v1.UserRegistered' AND aggregate_id = $1",
	                         id, NULL),
	                 1);

	/* the same email in other letters */
	char upper[128];
	for (size_t i = 0; i <= strlen(email); i++)
		upper[i] = (char)(email[i] >= 'a' && email[i] <= 'z' ? email[i] - 32 : email[i]);
	assert_status(register_full(upper, "another password", "B", "C", NULL, &reply),
	              RPC_STATUS_ALREADY_EXISTS);
	assert_string_equal(rpc_reply_error_reason(reply), "EMAIL_TAKEN");
	rpc_reply_free(reply);

	/* refused input names its fields */
	char e2[128];
	new_email(e2, sizeof(e2), "short");
	assert_status(register_full(e2, "1234567", "A", "B", NULL, &reply),
	              RPC_STATUS_INVALID_ARGUMENT);
	const Panthera__Rpc__V1__ErrorDetails *d = (const void *)rpc_reply_details(reply);
	assert_non_null(d);
	assert_non_null(d->bad_request);
	assert_int_equal(d->bad_request->n_field_violations, 1);
	assert_string_equal(d->bad_request->field_violations[0]->field, "password");
	assert_null(strstr(rpc_reply_message(reply), "1234567"));
	rpc_reply_free(reply);
	char long_pw[200];
	memset(long_pw, 'x', 129);
	long_pw[129] = '\0';
	assert_status(register_full(e2, long_pw, "A", "B", NULL, NULL),
	              RPC_STATUS_INVALID_ARGUMENT);
	long_pw[128] = '\0';
	assert_status(register_full(e2, long_pw, "A", "B", NULL, NULL), RPC_STATUS_OK);
	/* 8 characters of 2..4 bytes each pass; 7 do not */
	char e3[128];
	new_email(e3, sizeof(e3), "utf8");
	assert_status(register_full(e3, "ÿ€😀ü李é€x", "A", "B", NULL, NULL), RPC_STATUS_OK);
	new_email(e3, sizeof(e3), "utf8");
	assert_status(register_full(e3, "ÿ€😀ü李é€", "A", "B", NULL, NULL),
	              RPC_STATUS_INVALID_ARGUMENT);
	assert_status(register_full("not-an-email", "password ok", "", "B", NULL, &reply),
	              RPC_STATUS_INVALID_ARGUMENT);
	d = (const void *)rpc_reply_details(reply);
	assert_int_equal(d->bad_request->n_field_violations, 2);
	assert_string_equal(d->bad_request->field_violations[0]->field, "email");
	assert_string_equal(d->bad_request->field_violations[1]->field, "first_name");
	rpc_reply_free(reply);
	new_email(e3, sizeof(e3), "ctl");
	assert_status(register_full(e3, "password ok", "A\nB", "C", NULL, NULL),
	              RPC_STATUS_INVALID_ARGUMENT);
	assert_status(register_full(e3, "password ok", "\xff\xfe", "C", NULL, NULL),
	              RPC_STATUS_INVALID_ARGUMENT);
}

static void test_login_right_and_wrong(void **state)
{
	(void)state;
	char email[128], id[37];
	new_user("login", "right password", id, email);
	rpc_reply *reply;
	assert_status(login_on(ch, email, "right password", NULL, &reply), RPC_STATUS_OK);
	const Panthera__Auth__V1__Tokens *t = AUTH(login_response)(reply);
	assert_string_equal(t->token_type, "Bearer");
	assert_int_equal(t->expires_in, 900);
	assert_int_equal(strlen(t->refresh_token), 43);
	assert_int_equal(strchr(t->access_token, '.') != NULL, 1);
	rpc_reply_free(reply);

	rpc_reply *wrong_pw, *no_user;
	assert_status(login_on(ch, email, "wrong password", NULL, &wrong_pw),
	              RPC_STATUS_UNAUTHENTICATED);
	assert_status(login_on(ch, "nobody-here@example.com", "right password", NULL, &no_user),
	              RPC_STATUS_UNAUTHENTICATED);
	assert_string_equal(rpc_reply_message(wrong_pw), rpc_reply_message(no_user));
	assert_string_equal(rpc_reply_error_reason(wrong_pw), rpc_reply_error_reason(no_user));
	assert_string_equal(rpc_reply_error_reason(no_user), "INVALID_CREDENTIALS");
	rpc_reply_free(wrong_pw);
	rpc_reply_free(no_user);
	assert_status(login(email, "", NULL), RPC_STATUS_UNAUTHENTICATED);
	assert_status(login("", "", NULL), RPC_STATUS_UNAUTHENTICATED);
	/* a damaged stored hash refuses the login, and costs no more than allowed */
	char e2[128], i2[37];
	new_user("damaged", "damaged password", i2, e2);
	static const char *const damaged[] = {
	    "$scrypt$ln=20,r=32,p=16$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA",
	    "$scrypt$ln=15,r=8,p=1$!!!$???", "$scrypt$",
	    "$scrypt$ln=015,r=8,p=1$AAAAAAAAAAA$AAAAAAAAAAA"};
	int saved = stderr_to("/dev/null"); /* each is logged as an error */
	for (size_t i = 0; i < sizeof(damaged) / sizeof(damaged[0]); i++) {
		db_conn *c;
		const char *p[2] = {i2, damaged[i]};
		assert_status(db_acquire(pool, 2000, &c), RPC_STATUS_OK);
		assert_status(db_exec(c, NULL, "UPDATE users SET password_hash = $2 WHERE id = $1",
		                      2, p, NULL),
		              RPC_STATUS_OK);
		db_release(pool, c);
		assert_status(login(e2, "damaged password", NULL), RPC_STATUS_UNAUTHENTICATED);
	}
	stderr_back(saved);
	auth_service big = {.pool = pool, .data_dir = data_dir, .scrypt_log_n = 19};
	assert_status(auth_service_init(&big), RPC_STATUS_INVALID_ARGUMENT);

	/* the email in any letters */
	char upper[128];
	for (size_t i = 0; i <= strlen(email); i++)
		upper[i] = (char)(email[i] >= 'a' && email[i] <= 'z' ? email[i] - 32 : email[i]);
	assert_status(login(upper, "right password", NULL), RPC_STATUS_OK);
}

static void test_access_token_verifies_with_jwks(void **state)
{
	(void)state;
	char email[128], id[37];
	new_user("jwt", "jwt password", id, email);
	tokens t;
	time_t before = time(NULL);
	assert_status(login(email, "jwt password", &t), RPC_STATUS_OK);
	char kid[64], x[64];
	jwks_on(ch, 0, kid, x);
	assert_true(signature_ok(t.access, x));
	char header[1024], claims[2048];
	jwt_parts(t.access, header, claims, sizeof(header));
	char want[256];
	snprintf(want, sizeof(want), "{\"alg\":\"EdDSA\",\"typ\":\"JWT\",\"kid\":\"%s\"}", kid);
	assert_string_equal(header, want);
	snprintf(want, sizeof(want), "\"sub\":\"%s\"", id);
	assert_non_null(strstr(claims, want));
	assert_non_null(strstr(claims, "\"iss\":\"panthera\""));
	assert_non_null(strstr(claims, "\"aud\":\"panthera\""));
	assert_non_null(strstr(claims, "\"roles\":[\"USER\"]"));
	const char *sid = strstr(claims, "\"sid\":\"");
	assert_non_null(sid);
	char sid_v[37];
	snprintf(sid_v, sizeof(sid_v), "%s", sid + 7);
	assert_true(id_is_uuid(sid_v));
	long long iat = claim_num(claims, "iat"), nbf = claim_num(claims, "nbf"),
	          exp = claim_num(claims, "exp");
	assert_true(iat >= before && iat <= time(NULL));
	assert_true(nbf == iat);
	assert_true(exp == iat + 900);
	/* the session id is the family of the refresh token */
	assert_int_equal(
	    sql_num("SELECT count(*) FROM sessions WHERE family_id = $1 AND user_id = $2", sid_v,
	            id),
	    1);
	/* a changed payload no longer verifies */
	char tampered[2048];
	snprintf(tampered, sizeof(tampered), "%s", t.access);
	char *p = strchr(tampered, '.') + 5;
	*p = *p == 'A' ? 'B' : 'A';
	assert_false(signature_ok(tampered, x));

	/* the internal VerifyToken agrees */
	Panthera__Auth__V1__VerifyTokenRequest req = PANTHERA__AUTH__V1__VERIFY_TOKEN_REQUEST__INIT;
	req.access_token = t.access;
	rpc_reply *reply;
	const Panthera__Auth__V1__VerifyTokenResponse *v;
	assert_status(AUTH(verify_token)(ch, &req, NULL, &v, &reply), RPC_STATUS_OK);
	assert_string_equal(v->user_id, id);
	assert_int_equal(v->n_roles, 1);
	assert_int_equal(v->roles[0], PANTHERA__USERS__V1__ROLE__USER);
	assert_int_equal(v->expires_at->seconds, exp);
	rpc_reply_free(reply);
	assert_status(verify(tampered), RPC_STATUS_UNAUTHENTICATED);
}

static void test_verify_token_refuses_forgeries(void **state)
{
	(void)state;
	char email[128], id[37];
	new_user("forge", "forge password", id, email);
	tokens t;
	assert_status(login(email, "forge password", &t), RPC_STATUS_OK);
	char kid[64], x[64];
	jwks_on(ch, 0, kid, x);
	EVP_PKEY *key = signing_key(kid);
	char sid[37];
	assert_status(id_uuid4(sid), RPC_STATUS_OK);
	long long now = (long long)time(NULL);
	char header[256], claims[512], tok[4096];
	snprintf(header, sizeof(header), "{\"alg\":\"EdDSA\",\"typ\":\"JWT\",\"kid\":\"%s\"}", kid);
#define CLAIMS(iss, aud, nbf, exp, roles)                                                       \
	snprintf(                                                                               \
	    claims, sizeof(claims),                                                             \
	    "{\"iss\":\"%s\",\"sub\":\"%s\",\"aud\":%s,\"iat\":%lld,\"nbf\":%lld,\"exp\":%lld," \
	    "\"roles\":%s,\"sid\":\"%s\"}",                                                     \
	    iss, id, aud, now, nbf, exp, roles, sid)
	/* our own well-formed token verifies: the harness is right */
	CLAIMS("panthera", "\"panthera\"", now, now + 60, "[\"USER\",\"ADMIN\"]");
	forge(header, claims, key, NULL, tok, sizeof(tok));
	unsigned roles = 0;
	assert_status(verify_on(ch, tok, &roles), RPC_STATUS_OK);
	assert_int_equal(roles, HAS_USER | HAS_ADMIN);
	CLAIMS("panthera", "[\"other\",\"panthera\"]", now, now + 60, "[\"USER\"]");
	forge(header, claims, key, NULL, tok, sizeof(tok));
	assert_status(verify(tok), RPC_STATUS_OK);

	/* expired, not yet valid, other audience, other issuer */
	CLAIMS("panthera", "\"panthera\"", now - 900, now - 120, "[\"USER\"]");
	forge(header, claims, key, NULL, tok, sizeof(tok));
	assert_status(verify(tok), RPC_STATUS_UNAUTHENTICATED);
	CLAIMS("panthera", "\"panthera\"", now + 3600, now + 7200, "[\"USER\"]");
	forge(header, claims, key, NULL, tok, sizeof(tok));
	assert_status(verify(tok), RPC_STATUS_UNAUTHENTICATED);
	CLAIMS("panthera", "\"elsewhere\"", now, now + 60, "[\"USER\"]");
	forge(header, claims, key, NULL, tok, sizeof(tok));
	assert_status(verify(tok), RPC_STATUS_UNAUTHENTICATED);
	CLAIMS("evil", "\"panthera\"", now, now + 60, "[\"USER\"]");
	forge(header, claims, key, NULL, tok, sizeof(tok));
	assert_status(verify(tok), RPC_STATUS_UNAUTHENTICATED);
	CLAIMS("panthera", "\"panthera\"", now, now + 60, "[\"ROOT\"]");
	forge(header, claims, key, NULL, tok, sizeof(tok));
	assert_status(verify(tok), RPC_STATUS_UNAUTHENTICATED);

	/* other algorithms, other keys, extensions */
	CLAIMS("panthera", "\"panthera\"", now, now + 60, "[\"USER\",\"ADMIN\"]");
	forge("{\"alg\":\"none\",\"typ\":\"JWT\"}", claims, NULL, NULL, tok, sizeof(tok));
	assert_status(verify(tok), RPC_STATUS_UNAUTHENTICATED);
	snprintf(header, sizeof(header), "{\"alg\":\"none\",\"kid\":\"%s\"}", kid);
	forge(header, claims, NULL, NULL, tok, sizeof(tok));
	assert_status(verify(tok), RPC_STATUS_UNAUTHENTICATED);
	snprintf(header, sizeof(header), "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"%s\"}", kid);
	forge(header, claims, NULL, x, tok, sizeof(tok));
	assert_status(verify(tok), RPC_STATUS_UNAUTHENTICATED);
	EVP_PKEY *other = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	assert_non_null(other);
	snprintf(header, sizeof(header), "{\"alg\":\"EdDSA\",\"typ\":\"JWT\",\"kid\":\"%s\"}", kid);
	forge(header, claims, other, NULL, tok, sizeof(tok));
	assert_status(verify(tok), RPC_STATUS_UNAUTHENTICATED);
	forge("{\"alg\":\"EdDSA\",\"typ\":\"JWT\",\"kid\":\"0123456789abcdef\"}", claims, key, NULL,
	      tok, sizeof(tok));
	assert_status(verify(tok), RPC_STATUS_UNAUTHENTICATED);
	snprintf(header, sizeof(header), "{\"alg\":\"EdDSA\",\"kid\":\"%s\",\"crit\":[\"exp\"]}",
	         kid);
	forge(header, claims, key, NULL, tok, sizeof(tok));
	assert_status(verify(tok), RPC_STATUS_UNAUTHENTICATED);
	snprintf(header, sizeof(header), "{\"alg\":\"EdDSA\",\"alg\":\"none\",\"kid\":\"%s\"}",
	         kid);
	forge(header, claims, key, NULL, tok, sizeof(tok));
	assert_status(verify(tok), RPC_STATUS_UNAUTHENTICATED);
	EVP_PKEY_free(other);
	EVP_PKEY_free(key);
#undef CLAIMS

	/* not tokens at all */
	static const char *const junk[] = {"",         ".",
	                                   "..",       "a.b.c",
	                                   "a.b.c.d",  "Bearer x.y.z",
	                                   "e30.e30.", "eyJhbGciOiJub25lIn0.e30."};
	for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++)
		assert_status(verify(junk[i]), RPC_STATUS_UNAUTHENTICATED);
	char *big = malloc(20000);
	assert_non_null(big);
	memset(big, 'A', 19999);
	big[19999] = '\0';
	big[100] = big[200] = '.';
	assert_status(verify(big), RPC_STATUS_UNAUTHENTICATED);
	free(big);

	/* every one-character change and every cut of a real token fails */
	size_t n = strlen(t.access);
	char m[2048];
	for (size_t i = 0; i < n; i++) {
		snprintf(m, sizeof(m), "%s", t.access);
		m[i] = m[i] == 'A' ? 'Q' : m[i] == '.' ? 'x' : 'A';
		if (verify(m) != RPC_STATUS_UNAUTHENTICATED)
			fail_msg("token changed at %zu verified", i);
	}
	for (size_t i = 0; i < n; i += 3) {
		snprintf(m, sizeof(m), "%.*s", (int)i, t.access);
		if (verify(m) != RPC_STATUS_UNAUTHENTICATED)
			fail_msg("token cut at %zu verified", i);
	}
	assert_status(verify(t.access), RPC_STATUS_OK);
}

static void test_refresh_rotates_and_reuse_revokes(void **state)
{
	(void)state;
	char email[128], id[37];
	new_user("refresh", "refresh password", id, email);
	tokens t1, t2, t3, other;
	assert_status(login(email, "refresh password", &t1), RPC_STATUS_OK);
	assert_status(login(email, "refresh password", &other), RPC_STATUS_OK);
	assert_status(refresh(t1.refresh, &t2), RPC_STATUS_OK);
	assert_string_not_equal(t1.refresh, t2.refresh);
	assert_status(verify(t2.access), RPC_STATUS_OK);
	/* same session id across the rotation */
	char h1[1024], c1[2048], h2[1024], c2[2048];
	jwt_parts(t1.access, h1, c1, sizeof(h1));
	jwt_parts(t2.access, h2, c2, sizeof(h2));
	assert_memory_equal(strstr(c1, "\"sid\""), strstr(c2, "\"sid\""), 44);
	assert_status(refresh(t2.refresh, &t3), RPC_STATUS_OK);
	/* only hashes are stored */
	assert_int_equal(sql_num("SELECT count(*) FROM sessions WHERE user_id = $1 AND"
	                         " refresh_hash = sha256(convert_to($2, 'UTF8'))",
	                         id, t3.refresh),
	                 1);
	/* t1 again: reuse. Refused, and the whole session dies: t3 too */
	assert_status(refresh(t1.refresh, NULL), RPC_STATUS_UNAUTHENTICATED);
	assert_status(refresh(t3.refresh, NULL), RPC_STATUS_UNAUTHENTICATED);
	assert_int_equal(
	    sql_num("SELECT count(*) FROM sessions s WHERE user_id = $1 AND"
	            " revoked_at IS NULL AND family_id = (SELECT family_id FROM sessions"
	            " WHERE refresh_hash = sha256(convert_to($2, 'UTF8')))",
	            id, t3.refresh),
	    0);
	/* the other login is another session, untouched */
	assert_status(refresh(other.refresh, &other), RPC_STATUS_OK);
	/* refused shapes */
	assert_status(refresh("", NULL), RPC_STATUS_UNAUTHENTICATED);
	assert_status(refresh("' OR 1=1 --", NULL), RPC_STATUS_UNAUTHENTICATED);
	assert_status(refresh("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", NULL),
	              RPC_STATUS_UNAUTHENTICATED);
	/* an expired one */
	tokens t4;
	assert_status(login(email, "refresh password", &t4), RPC_STATUS_OK);
	sql_do("UPDATE sessions SET expires_at = now() - interval '1 second'"
	       " WHERE refresh_hash = sha256(convert_to($1, 'UTF8'))",
	       t4.refresh);
	assert_status(refresh(t4.refresh, NULL), RPC_STATUS_UNAUTHENTICATED);
}

static void test_logout(void **state)
{
	(void)state;
	char email[128], id[37], email2[128], id2[37];
	new_user("logout", "logout password", id, email);
	new_user("logout2", "logout password 2", id2, email2);
	tokens t, t2;
	assert_status(login(email, "logout password", &t), RPC_STATUS_OK);
	assert_status(login(email2, "logout password 2", &t2), RPC_STATUS_OK);
	as_caller a;
	assert_status(logout(NULL, t.refresh), RPC_STATUS_UNAUTHENTICATED);
	/* another account's token: the answer of an unknown one, and nothing ends */
	assert_status(logout(as(&a, id, 0), t2.refresh), RPC_STATUS_OK);
	assert_status(refresh(t2.refresh, &t2), RPC_STATUS_OK); /* not ended by that */
	assert_status(logout(as(&a, id, 0), "not a token"), RPC_STATUS_INVALID_ARGUMENT);
	assert_status(logout(as(&a, id, 0), t.refresh), RPC_STATUS_OK);
	assert_status(refresh(t.refresh, NULL), RPC_STATUS_UNAUTHENTICATED);
	assert_status(logout(as(&a, id, 0), t.refresh), RPC_STATUS_OK); /* again: success */
	assert_status(logout(as(&a, id, 0), "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
	              RPC_STATUS_OK); /* unknown: nothing to end */
	/* an admin may end anyone's session */
	assert_status(logout(as_admin(&a), t2.refresh), RPC_STATUS_OK);
	assert_status(refresh(t2.refresh, NULL), RPC_STATUS_UNAUTHENTICATED);
}

static void test_password_reset(void **state)
{
	(void)state;
	char email[128], id[37];
	new_user("reset", "old password", id, email);
	tokens a, b;
	assert_status(login(email, "old password", &a), RPC_STATUS_OK);
	assert_status(login(email, "old password", &b), RPC_STATUS_OK);

	/* unknown, deactivated or malformed: the same OK, nothing made */
	int before = sinks();
	assert_status(request_reset("nobody-at-all@example.com"), RPC_STATUS_OK);
	assert_int_equal(sinks(), before);
	assert_status(request_reset("not an email"), RPC_STATUS_INVALID_ARGUMENT);

	char upper[128];
	for (size_t i = 0; i <= strlen(email); i++)
		upper[i] = (char)(email[i] >= 'a' && email[i] <= 'z' ? email[i] - 32 : email[i]);
	assert_status(request_reset(upper), RPC_STATUS_OK);
	assert_int_equal(sinks(), before + 1);
	char token[64];
	snprintf(token, sizeof(token), "%s", sink_token);
	assert_string_equal(sink_user, id);
	assert_int_equal(strlen(token), 43);
	/* stored hashed; the event carries no token */
	assert_int_equal(sql_num("SELECT count(*) FROM password_resets WHERE user_id = $1 AND"
	                         " token_hash = sha256(convert_to($2, 'UTF8')) AND used_at IS NULL"
	                         " AND expires_at BETWEEN now() + interval '29 minutes'"
	                         " AND now() + interval '31 minutes'",
	                         id, token),
	                 1);
	db_conn *c;
	PGresult *r;
	const char *p[1] = {id};
	assert_status(db_acquire(pool, 2000, &c), RPC_STATUS_OK);
	assert_status(db_exec(c, NULL,
	                      "SELECT payload FROM outbox WHERE aggregate_id = $1 AND"
	                      " type = 'panthera.events.v1.PasswordResetRequested'",
	                      1, p, &r),
	              RPC_STATUS_OK);
	assert_int_equal(PQntuples(r), 1);
	size_t len;
	unsigned char *raw = PQunescapeBytea((const unsigned char *)PQgetvalue(r, 0, 0), &len);
	assert_non_null(raw);
	assert_null(memmem(raw, len, token, strlen(token)));
	Panthera__Events__V1__PasswordResetRequested *ev =
	    panthera__events__v1__password_reset_requested__unpack(NULL, len, raw);
	assert_non_null(ev);
	assert_string_equal(ev->user_id, id);
	assert_true(ev->expires_at->seconds >= time(NULL) + 1700);
	panthera__events__v1__password_reset_requested__free_unpacked(ev, NULL);
	PQfreemem(raw);
	PQclear(r);
	db_release(pool, c);

	/* wrong tokens, a short password */
	char reason[64];
	assert_status(confirm_reset("garbage", "new password 1", reason, sizeof(reason)),
	              RPC_STATUS_INVALID_ARGUMENT);
	assert_string_equal(reason, "INVALID_RESET_TOKEN");
	assert_status(confirm_reset("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "new password 1",
	                            reason, sizeof(reason)),
	              RPC_STATUS_INVALID_ARGUMENT);
	assert_string_equal(reason, "INVALID_RESET_TOKEN");
	assert_status(confirm_reset(token, "short", reason, sizeof(reason)),
	              RPC_STATUS_INVALID_ARGUMENT);

	/* the right one: new password, every session gone */
	assert_status(confirm_reset(token, "new password 1", NULL, 0), RPC_STATUS_OK);
	assert_status(login(email, "old password", NULL), RPC_STATUS_UNAUTHENTICATED);
	assert_status(login(email, "new password 1", NULL), RPC_STATUS_OK);
	assert_status(refresh(a.refresh, NULL), RPC_STATUS_UNAUTHENTICATED);
	assert_status(refresh(b.refresh, NULL), RPC_STATUS_UNAUTHENTICATED);
	/* single use */
	assert_status(confirm_reset(token, "new password 2", reason, sizeof(reason)),
	              RPC_STATUS_INVALID_ARGUMENT);
	assert_string_equal(reason, "INVALID_RESET_TOKEN");
	assert_status(login(email, "new password 1", NULL), RPC_STATUS_OK);

	/* expired */
	assert_status(request_reset(email), RPC_STATUS_OK);
	snprintf(token, sizeof(token), "%s", sink_token);
	sql_do("UPDATE password_resets SET expires_at = now() - interval '1 second'"
	       " WHERE token_hash = sha256(convert_to($1, 'UTF8'))",
	       token);
	assert_status(confirm_reset(token, "new password 3", reason, sizeof(reason)),
	              RPC_STATUS_INVALID_ARGUMENT);
	assert_string_equal(reason, "INVALID_RESET_TOKEN");

	/* a newer request supersedes an older token */
	char older[64];
	assert_status(request_reset(email), RPC_STATUS_OK);
	snprintf(older, sizeof(older), "%s", sink_token);
	assert_status(request_reset(email), RPC_STATUS_OK);
	snprintf(token, sizeof(token), "%s", sink_token);
	assert_string_not_equal(older, token);
	assert_status(confirm_reset(older, "new password 4", NULL, 0), RPC_STATUS_INVALID_ARGUMENT);
	assert_status(confirm_reset(token, "new password 4", NULL, 0), RPC_STATUS_OK);
	assert_status(login(email, "new password 4", NULL), RPC_STATUS_OK);
}

static void test_reset_email_goes_through_notifications(void **state)
{
	(void)state;
	char email[128], id[37];
	new_user("mail", "mail password", id, email);
	pthread_mutex_lock(&seen_lock);
	int sent = mails;
	pthread_mutex_unlock(&seen_lock);
	svc.notifications = ch; /* the double registered on the same server */
	assert_status(request_reset(email), RPC_STATUS_OK);
	assert_int_equal(wait_mails(sent + 1), sent + 1);
	svc.notifications = NULL;
	pthread_mutex_lock(&seen_lock);
	char lower[128];
	for (size_t i = 0; i <= strlen(email); i++)
		lower[i] = (char)(email[i] >= 'A' && email[i] <= 'Z' ? email[i] + 32 : email[i]);
	assert_string_equal(mail_to, lower);
	assert_non_null(strstr(mail_body, sink_token));
	pthread_mutex_unlock(&seen_lock);
	/* no email for an unknown account */
	svc.notifications = ch;
	assert_status(request_reset("unknown-mail@example.com"), RPC_STATUS_OK);
	svc.notifications = NULL;
	assert_status(request_reset(email), RPC_STATUS_OK); /* a known one, by the log path */
	assert_int_equal(wait_mails(sent + 1), sent + 1);
	assert_string_equal(sink_user, id);
}

static void test_deactivation_blocks_login_and_refresh(void **state)
{
	(void)state;
	char email[128], id[37];
	new_user("deact", "deact password", id, email);
	tokens t;
	assert_status(login(email, "deact password", &t), RPC_STATUS_OK);
	as_caller a;
	assert_status(delete_user(as(&a, id, 0), id), RPC_STATUS_OK);
	rpc_reply *deact, *wrong;
	assert_status(login_on(ch, email, "deact password", NULL, &deact),
	              RPC_STATUS_UNAUTHENTICATED);
	assert_status(login_on(ch, email, "wrong password", NULL, &wrong),
	              RPC_STATUS_UNAUTHENTICATED);
	assert_string_equal(rpc_reply_message(deact), rpc_reply_message(wrong));
	rpc_reply_free(deact);
	rpc_reply_free(wrong);
	assert_status(refresh(t.refresh, NULL), RPC_STATUS_UNAUTHENTICATED);
	rpc_reply *reply;
	assert_status(get_user(as_admin(&a), id, &reply), RPC_STATUS_OK);
	assert_int_equal(USERS(get_user_response)(reply)->status,
	                 PANTHERA__USERS__V1__USER_STATUS__DEACTIVATED);
	rpc_reply_free(reply);
	assert_int_equal(sql_num("SELECT count(*) FROM outbox WHERE type ="
	                         " 'panthera.events.v1.UserDeactivated' AND aggregate_id = $1",
	                         id, NULL),
	                 1);
	/* again: the same answer, no second event */
	assert_status(delete_user(as(&a, id, 0), id), RPC_STATUS_OK);
	assert_int_equal(sql_num("SELECT count(*) FROM outbox WHERE type ="
	                         " 'panthera.events.v1.UserDeactivated' AND aggregate_id = $1",
	                         id, NULL),
	                 1);
	/* no reset for a deactivated account */
	int before = sinks();
	assert_status(request_reset(email), RPC_STATUS_OK);
	assert_int_equal(sinks(), before);
}

static void test_owner_checks(void **state)
{
	(void)state;
	char ea[128], ia[37], eb[128], ib[37], unknown[37];
	new_user("owner-a", "owner a password", ia, ea);
	new_user("owner-b", "owner b password", ib, eb);
	assert_status(id_uuid4(unknown), RPC_STATUS_OK);
	as_caller a;
	rpc_reply *theirs, *missing;
	/* another user's account looks like no account */
	assert_status(get_user(as(&a, ib, 0), ia, &theirs), RPC_STATUS_NOT_FOUND);
	assert_status(get_user(as(&a, ib, 0), unknown, &missing), RPC_STATUS_NOT_FOUND);
	assert_string_equal(rpc_reply_error_reason(theirs), "USER_NOT_FOUND");
	assert_string_equal(rpc_reply_error_reason(theirs), rpc_reply_error_reason(missing));
	char m1[256], m2[256];
	snprintf(m1, sizeof(m1), "user %s not found", ia);
	snprintf(m2, sizeof(m2), "user %s not found", unknown);
	assert_string_equal(rpc_reply_message(theirs), m1);
	assert_string_equal(rpc_reply_message(missing), m2);
	rpc_reply_free(theirs);
	rpc_reply_free(missing);
	assert_status(get_user(as(&a, ia, 0), ia, NULL), RPC_STATUS_OK);
	assert_status(get_user(as_admin(&a), ia, NULL), RPC_STATUS_OK);
	assert_status(get_user(as_admin(&a), unknown, NULL), RPC_STATUS_NOT_FOUND);
	assert_status(get_user(NULL, ia, NULL), RPC_STATUS_UNAUTHENTICATED);
	assert_status(get_user(as(&a, "not-a-uuid", 1), ia, NULL), RPC_STATUS_UNAUTHENTICATED);
	assert_status(get_user(as(&a, ia, 0), "x'; --", NULL), RPC_STATUS_INVALID_ARGUMENT);
	assert_status(delete_user(as(&a, ib, 0), ia), RPC_STATUS_NOT_FOUND);
	assert_status(login(ea, "owner a password", NULL), RPC_STATUS_OK); /* still active */
	Panthera__Users__V1__ListAddressesRequest la =
	    PANTHERA__USERS__V1__LIST_ADDRESSES_REQUEST__INIT;
	la.user_id = ia;
	rpc_reply *reply;
	assert_status(USERS(list_addresses)(ch, &la, as(&a, ib, 0), NULL, &reply),
	              RPC_STATUS_NOT_FOUND);
	rpc_reply_free(reply);

	/* the current user */
	Panthera__Users__V1__GetCurrentUserRequest cur =
	    PANTHERA__USERS__V1__GET_CURRENT_USER_REQUEST__INIT;
	const Panthera__Users__V1__User *u;
	assert_status(USERS(get_current_user)(ch, &cur, as(&a, ia, 0), &u, &reply), RPC_STATUS_OK);
	assert_string_equal(u->id, ia);
	rpc_reply_free(reply);
	assert_status(USERS(get_current_user)(ch, &cur, NULL, NULL, &reply),
	              RPC_STATUS_UNAUTHENTICATED);
	rpc_reply_free(reply);

	/* listing is for admins */
	Panthera__Users__V1__ListUsersRequest lr = PANTHERA__USERS__V1__LIST_USERS_REQUEST__INIT;
	assert_status(USERS(list_users)(ch, &lr, as(&a, ia, 0), NULL, &reply),
	              RPC_STATUS_PERMISSION_DENIED);
	rpc_reply_free(reply);
	const Panthera__Users__V1__ListUsersResponse *l;
	assert_status(USERS(list_users)(ch, &lr, as_admin(&a), &l, &reply), RPC_STATUS_OK);
	assert_true(l->total >= 3);
	assert_int_equal(l->page, 1);
	assert_int_equal(l->page_size, 20);
	assert_string_equal(l->users[0]->id, admin_id); /* oldest first */
	long long total = l->total;
	rpc_reply_free(reply);
	lr.page_size = 2;
	lr.page = 2;
	assert_status(USERS(list_users)(ch, &lr, as_admin(&a), &l, &reply), RPC_STATUS_OK);
	assert_int_equal(l->n_users, total >= 4 ? 2 : total - 2);
	assert_int_equal(l->total, total);
	rpc_reply_free(reply);
	lr.page_size = 101;
	assert_status(USERS(list_users)(ch, &lr, as_admin(&a), NULL, &reply),
	              RPC_STATUS_INVALID_ARGUMENT);
	rpc_reply_free(reply);

	/* the internal batch read */
	Panthera__Users__V1__BatchGetUsersRequest br =
	    PANTHERA__USERS__V1__BATCH_GET_USERS_REQUEST__INIT;
	char *ids[] = {ia, ib, unknown, ia};
	br.user_ids = ids;
	br.n_user_ids = 4;
	const Panthera__Users__V1__BatchGetUsersResponse *bu;
	assert_status(USERS(batch_get_users)(ch, &br, NULL, &bu, &reply), RPC_STATUS_OK);
	assert_int_equal(bu->n_users, 2);
	rpc_reply_free(reply);
	char *bad[] = {ia, "1; DROP TABLE users"};
	br.user_ids = bad;
	br.n_user_ids = 2;
	assert_status(USERS(batch_get_users)(ch, &br, NULL, NULL, &reply),
	              RPC_STATUS_INVALID_ARGUMENT);
	rpc_reply_free(reply);
}

static rpc_status update(const rpc_call_opts *o, const char *id, const char *const *mask,
                         size_t n_mask, const char *first, const Panthera__Users__V1__Role *roles,
                         size_t n_roles, Panthera__Users__V1__UserStatus status,
                         rpc_reply **reply_out)
{
	Panthera__Users__V1__UpdateUserRequest req = PANTHERA__USERS__V1__UPDATE_USER_REQUEST__INIT;
	Google__Protobuf__FieldMask fm = GOOGLE__PROTOBUF__FIELD_MASK__INIT;
	fm.paths = (char **)mask;
	fm.n_paths = n_mask;
	req.update_mask = n_mask ? &fm : NULL;
	req.user_id = (char *)id;
	req.first_name = (char *)(first ? first : "");
	req.roles = (Panthera__Users__V1__Role *)roles;
	req.n_roles = n_roles;
	req.status = status;
	rpc_reply *reply;
	rpc_status st = USERS(update_user)(ch, &req, o, NULL, &reply);
	if (reply_out != NULL)
		*reply_out = reply;
	else
		rpc_reply_free(reply);
	return st;
}

static void test_admin_only_fields(void **state)
{
	(void)state;
	char email[128], id[37];
	new_user("fields", "fields password", id, email);
	as_caller a;
	rpc_reply *reply;
	static const char *const first[] = {"first_name"};
	assert_status(update(as(&a, id, 0), id, first, 1, "Renamed", NULL, 0, 0, &reply),
	              RPC_STATUS_OK);
	const Panthera__Users__V1__User *u = USERS(update_user_response)(reply);
	assert_string_equal(u->first_name, "Renamed");
	assert_string_equal(u->last_name, "fields");
	rpc_reply_free(reply);
	assert_status(update(as(&a, id, 0), id, first, 1, "", NULL, 0, 0, NULL),
	              RPC_STATUS_INVALID_ARGUMENT);
	static const char *const unknown[] = {"email"};
	assert_status(update(as(&a, id, 0), id, unknown, 1, "X", NULL, 0, 0, NULL),
	              RPC_STATUS_INVALID_ARGUMENT);

	static const char *const roles_mask[] = {"roles"}, *const status_mask[] = {"status"};
	static const Panthera__Users__V1__Role admin_role[] = {PANTHERA__USERS__V1__ROLE__ADMIN};
	assert_status(update(as(&a, id, 0), id, roles_mask, 1, NULL, admin_role, 1, 0, &reply),
	              RPC_STATUS_PERMISSION_DENIED);
	assert_string_equal(rpc_reply_error_reason(reply), "ADMIN_ONLY_FIELD");
	rpc_reply_free(reply);
	assert_status(update(as(&a, id, 0), id, status_mask, 1, NULL, NULL, 0,
	                     PANTHERA__USERS__V1__USER_STATUS__DEACTIVATED, NULL),
	              RPC_STATUS_PERMISSION_DENIED);
	/* without a mask, a set field counts as named */
	assert_status(update(as(&a, id, 0), id, NULL, 0, NULL, admin_role, 1, 0, NULL),
	              RPC_STATUS_PERMISSION_DENIED);

	/* an admin may: USER is always kept, and the next token says ADMIN */
	assert_status(update(as_admin(&a), id, roles_mask, 1, NULL, admin_role, 1, 0, &reply),
	              RPC_STATUS_OK);
	u = USERS(update_user_response)(reply);
	assert_int_equal(u->n_roles, 2);
	assert_int_equal(u->roles[0], PANTHERA__USERS__V1__ROLE__USER);
	assert_int_equal(u->roles[1], PANTHERA__USERS__V1__ROLE__ADMIN);
	assert_string_equal(u->first_name, "Renamed");
	rpc_reply_free(reply);
	tokens t;
	assert_status(login(email, "fields password", &t), RPC_STATUS_OK);
	unsigned roles = 0;
	assert_status(verify_on(ch, t.access, &roles), RPC_STATUS_OK);
	assert_int_equal(roles, HAS_USER | HAS_ADMIN);
	static const Panthera__Users__V1__Role bad_role[] = {(Panthera__Users__V1__Role)7};
	assert_status(update(as_admin(&a), id, roles_mask, 1, NULL, bad_role, 1, 0, NULL),
	              RPC_STATUS_INVALID_ARGUMENT);
	/* status: deactivation ends the sessions, reactivation lets them log in */
	assert_status(update(as_admin(&a), id, status_mask, 1, NULL, NULL, 0,
	                     PANTHERA__USERS__V1__USER_STATUS__DEACTIVATED, NULL),
	              RPC_STATUS_OK);
	assert_status(refresh(t.refresh, NULL), RPC_STATUS_UNAUTHENTICATED);
	assert_status(login(email, "fields password", NULL), RPC_STATUS_UNAUTHENTICATED);
	assert_status(update(as_admin(&a), id, status_mask, 1, NULL, NULL, 0,
	                     PANTHERA__USERS__V1__USER_STATUS__ACTIVE, NULL),
	              RPC_STATUS_OK);
	assert_status(login(email, "fields password", NULL), RPC_STATUS_OK);
	static const Panthera__Users__V1__Role user_only[] = {PANTHERA__USERS__V1__ROLE__USER};
	assert_status(update(as_admin(&a), id, roles_mask, 1, NULL, user_only, 1, 0, &reply),
	              RPC_STATUS_OK);
	assert_int_equal(USERS(update_user_response)(reply)->n_roles, 1);
	rpc_reply_free(reply);
}

static rpc_status add_address(const rpc_call_opts *o, const char *user_id, const char *street,
                              const char *country, int is_default, char id_out[37],
                              int *default_out)
{
	Panthera__Users__V1__CreateAddressRequest req =
	    PANTHERA__USERS__V1__CREATE_ADDRESS_REQUEST__INIT;
	req.user_id = (char *)user_id;
	req.street = (char *)street;
	req.city = "Springfield";
	req.zip_code = "12345";
	req.country = (char *)country;
	req.is_default = is_default;
	rpc_reply *reply;
	const Panthera__Users__V1__Address *a;
	rpc_status st = USERS(create_address)(ch, &req, o, &a, &reply);
	if (st == RPC_STATUS_OK) {
		if (id_out != NULL)
			snprintf(id_out, 37, "%s", a->id);
		if (default_out != NULL)
			*default_out = a->is_default;
		assert_string_equal(a->street, street);
		assert_int_equal(strlen(a->country), 2);
	}
	rpc_reply_free(reply);
	return st;
}

static rpc_status delete_address(const rpc_call_opts *o, const char *user_id, const char *id)
{
	Panthera__Users__V1__DeleteAddressRequest req =
	    PANTHERA__USERS__V1__DELETE_ADDRESS_REQUEST__INIT;
	req.user_id = (char *)user_id;
	req.address_id = (char *)id;
	rpc_reply *reply;
	rpc_status st = USERS(delete_address)(ch, &req, o, NULL, &reply);
	rpc_reply_free(reply);
	return st;
}

static void test_addresses_keep_one_default(void **state)
{
	(void)state;
	char email[128], id[37], eb[128], ib[37];
	new_user("addr", "addr password", id, email);
	new_user("addr-b", "addr b password", ib, eb);
	as_caller a;
	char a1[37], a2[37], a3[37];
	int def;
	assert_status(add_address(as(&a, id, 0), id, "1 First St", "us", 0, a1, &def),
	              RPC_STATUS_OK);
	assert_true(def); /* the first is the default whatever it says */
	assert_status(add_address(as(&a, id, 0), id, "2 Second St", "US", 0, a2, &def),
	              RPC_STATUS_OK);
	assert_false(def);
	assert_status(add_address(as_admin(&a), id, "3 Third St", "DE", 1, a3, &def),
	              RPC_STATUS_OK);
	assert_true(def);
	assert_int_equal(
	    sql_num("SELECT count(*) FROM addresses WHERE user_id = $1 AND is_default", id, NULL),
	    1);
	Panthera__Users__V1__ListAddressesRequest lr =
	    PANTHERA__USERS__V1__LIST_ADDRESSES_REQUEST__INIT;
	lr.user_id = id;
	rpc_reply *reply;
	const Panthera__Users__V1__ListAddressesResponse *l;
	assert_status(USERS(list_addresses)(ch, &lr, as(&a, id, 0), &l, &reply), RPC_STATUS_OK);
	assert_int_equal(l->n_addresses, 3);
	assert_string_equal(l->addresses[0]->id, a3); /* the default first */
	assert_true(l->addresses[0]->is_default);
	assert_false(l->addresses[1]->is_default);
	assert_string_equal(l->addresses[1]->id, a1);
	assert_string_equal(l->addresses[1]->country, "US");
	assert_string_equal(l->addresses[1]->city, "Springfield");
	rpc_reply_free(reply);

	/* not theirs: NOT_FOUND, nothing deleted */
	assert_status(delete_address(as(&a, ib, 0), ib, a1), RPC_STATUS_NOT_FOUND);
	assert_status(delete_address(as(&a, ib, 0), id, a1), RPC_STATUS_NOT_FOUND);
	assert_status(add_address(as(&a, ib, 0), id, "4 Fourth St", "US", 0, NULL, NULL),
	              RPC_STATUS_NOT_FOUND);
	/* deleting the default hands it to the oldest */
	assert_status(delete_address(as(&a, id, 0), id, a3), RPC_STATUS_OK);
	assert_status(delete_address(as(&a, id, 0), id, a3), RPC_STATUS_NOT_FOUND);
	assert_int_equal(
	    sql_num("SELECT count(*) FROM addresses WHERE id = $1 AND is_default", a1, NULL), 1);
	assert_int_equal(
	    sql_num("SELECT count(*) FROM addresses WHERE user_id = $1 AND is_default", id, NULL),
	    1);
	assert_status(delete_address(as(&a, id, 0), id, a2), RPC_STATUS_OK);
	assert_status(delete_address(as(&a, id, 0), id, a1), RPC_STATUS_OK);
	assert_int_equal(sql_num("SELECT count(*) FROM addresses WHERE user_id = $1", id, NULL), 0);

	/* refused input */
	assert_status(add_address(as(&a, id, 0), id, "5 Fifth St", "USA", 0, NULL, NULL),
	              RPC_STATUS_INVALID_ARGUMENT);
	assert_status(add_address(as(&a, id, 0), id, "", "US", 0, NULL, NULL),
	              RPC_STATUS_INVALID_ARGUMENT);
	assert_status(delete_address(as(&a, id, 0), id, "nope"), RPC_STATUS_INVALID_ARGUMENT);
}

static void test_bootstrap_admin_is_idempotent(void **state)
{
	(void)state;
	char email[128];
	new_email(email, sizeof(email), "boss");
	assert_status(auth_bootstrap_admin(&svc, email, "boss password"), RPC_STATUS_OK);
	assert_status(auth_bootstrap_admin(&svc, email, "boss password"), RPC_STATUS_OK);
	assert_status(auth_bootstrap_admin(&svc, email, "another password"), RPC_STATUS_OK);
	assert_int_equal(sql_num("SELECT count(*) FROM users WHERE email = lower($1) AND"
	                         " roles = '{USER,ADMIN}' AND status = 'ACTIVE'",
	                         email, NULL),
	                 1);
	char id[37];
	sql_text("SELECT id FROM users WHERE email = lower($1)", email, id, sizeof(id));
	assert_int_equal(sql_num("SELECT count(*) FROM outbox WHERE type ="
	                         " 'panthera.events.v1.UserRegistered' AND aggregate_id = $1",
	                         id, NULL),
	                 1);
	tokens t;
	assert_status(login(email, "boss password", &t), RPC_STATUS_OK);
	assert_status(login(email, "another password", NULL), RPC_STATUS_UNAUTHENTICATED);
	unsigned roles = 0;
	assert_status(verify_on(ch, t.access, &roles), RPC_STATUS_OK);
	assert_int_equal(roles, HAS_USER | HAS_ADMIN);

	/* an existing account is promoted only with its own password */
	char e2[128], i2[37];
	new_user("promote", "own password", i2, e2);
	Panthera__Auth__V1__EnsureAdminRequest req = PANTHERA__AUTH__V1__ENSURE_ADMIN_REQUEST__INIT;
	req.email = e2;
	req.password = "bootstrap password";
	rpc_reply *reply;
	const Panthera__Users__V1__User *u;
	int quiet = stderr_to("/dev/null"); /* the refusal is logged as an error */
	assert_status(AUTH(ensure_admin)(ch, &req, NULL, &u, &reply), RPC_STATUS_PERMISSION_DENIED);
	rpc_reply_free(reply);
	assert_status(auth_bootstrap_admin(&svc, e2, "bootstrap password"),
	              RPC_STATUS_PERMISSION_DENIED);
	stderr_back(quiet);
	assert_int_equal(
	    sql_num("SELECT count(*) FROM users WHERE id = $1 AND roles = '{USER}'", i2, NULL), 1);
	req.password = "own password";
	assert_status(AUTH(ensure_admin)(ch, &req, NULL, &u, &reply), RPC_STATUS_OK);
	assert_string_equal(u->id, i2);
	assert_int_equal(u->n_roles, 2);
	rpc_reply_free(reply);
	assert_status(login(e2, "own password", NULL), RPC_STATUS_OK);
	assert_status(login(e2, "bootstrap password", NULL), RPC_STATUS_UNAUTHENTICATED);
	/* once an admin, a later start with another password changes nothing */
	assert_status(auth_bootstrap_admin(&svc, e2, "bootstrap password"), RPC_STATUS_OK);
	assert_status(login(e2, "own password", NULL), RPC_STATUS_OK);
	req.password = "short";
	assert_status(AUTH(ensure_admin)(ch, &req, NULL, NULL, &reply),
	              RPC_STATUS_INVALID_ARGUMENT);
	rpc_reply_free(reply);
	int saved = stderr_to("/dev/null"); /* the refusal is logged as an error */
	assert_status(auth_bootstrap_admin(&svc, "no email", "long enough"),
	              RPC_STATUS_INVALID_ARGUMENT);
	stderr_back(saved);
}

static void test_keys_persist_and_rotate(void **state)
{
	(void)state;
	char kid[64], x[64];
	assert_int_equal(jwks_on(ch, 0, kid, x), 1);
	char path[512];
	struct stat sb;
	snprintf(path, sizeof(path), "%s/keys/%s.pem", data_dir, kid);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	snprintf(path, sizeof(path), "%s/keys", data_dir);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0700);

	/* a second start on the same folder: the same key; and a cost raised */
	char email[128], id[37];
	new_user("keys", "keys password", id, email);
	tokens t;
	assert_status(login(email, "keys password", &t), RPC_STATUS_OK);
	auth_service s2 = {.pool = pool, .data_dir = data_dir, .scrypt_log_n = TEST_LOG_N + 1};
	assert_status(auth_service_init(&s2), RPC_STATUS_OK);
	rpc_server *srv2;
	rpc_channel *ch2;
	serve(&s2, "inproc://auth-test-2", &srv2, &ch2);
	char kid2[64], x2[64];
	assert_int_equal(jwks_on(ch2, 0, kid2, x2), 1);
	assert_string_equal(kid2, kid);
	assert_string_equal(x2, x);
	assert_status(verify_on(ch2, t.access, NULL), RPC_STATUS_OK);
	/* a login through it stores the hash with its parameters */
	assert_status(login_on(ch2, email, "keys password", NULL, NULL), RPC_STATUS_OK);
	char hash[256];
	sql_text("SELECT password_hash FROM users WHERE id = $1", id, hash, sizeof(hash));
	assert_true(strncmp(hash, "$scrypt$ln=11,r=8,p=1$", 22) == 0);
	assert_status(login(email, "keys password", NULL),
	              RPC_STATUS_OK); /* read from the string */

	/* rotation: a new signer, the old key still listed and verifying */
	char rotated[32];
	assert_status(auth_service_rotate_key(&s2, rotated), RPC_STATUS_OK);
	assert_string_not_equal(rotated, kid);
	assert_int_equal(jwks_on(ch2, 0, kid2, x2), 2);
	assert_string_equal(kid2, rotated);
	jwks_on(ch2, 1, kid2, x2);
	assert_string_equal(kid2, kid);
	tokens t2;
	assert_status(login_on(ch2, email, "keys password", &t2, NULL), RPC_STATUS_OK);
	char h[1024], c[2048];
	jwt_parts(t2.access, h, c, sizeof(h));
	assert_non_null(strstr(h, rotated));
	jwks_on(ch2, 0, kid2, x2);
	assert_true(signature_ok(t2.access, x2));
	assert_status(verify_on(ch2, t.access, NULL), RPC_STATUS_OK);
	assert_status(verify_on(ch2, t2.access, NULL), RPC_STATUS_OK);
	rpc_channel_close(ch2);
	server_end(srv2);
	auth_service_fini(&s2);
	auth_service_fini(&s2); /* twice: harmless */

	/* a third start loads both, the newest signing; the default cost */
	auth_service s3 = {.pool = pool, .data_dir = data_dir};
	assert_status(auth_service_init(&s3), RPC_STATUS_OK);
	rpc_server *srv3;
	rpc_channel *ch3;
	serve(&s3, "inproc://auth-test-3", &srv3, &ch3);
	assert_int_equal(jwks_on(ch3, 0, kid2, x2), 2);
	assert_string_equal(kid2, rotated);
	assert_status(verify_on(ch3, t.access, NULL), RPC_STATUS_OK);
	assert_status(verify_on(ch3, t2.access, NULL), RPC_STATUS_OK);
	rpc_channel_close(ch3);
	server_end(srv3);
	char boss[128];
	new_email(boss, sizeof(boss), "cost");
	assert_status(auth_bootstrap_admin(&s3, boss, "production cost"), RPC_STATUS_OK);
	sql_text("SELECT password_hash FROM users WHERE email = lower($1)", boss, hash,
	         sizeof(hash));
	assert_true(strncmp(hash, "$scrypt$ln=15,r=8,p=1$", 22) == 0);
	assert_int_equal(strlen(hash), 22 + 22 + 1 + 43);
	auth_service_fini(&s3);
	auth_service bad = {.pool = pool, .data_dir = NULL};
	assert_status(auth_service_init(&bad), RPC_STATUS_INVALID_ARGUMENT);
	bad = (auth_service){.pool = pool, .data_dir = data_dir, .issuer = "a\"b"};
	assert_status(auth_service_init(&bad), RPC_STATUS_INVALID_ARGUMENT);
	bad = (auth_service){.pool = pool, .data_dir = "/proc/no/such/place"};
	int saved = stderr_to("/dev/null"); /* the failure is logged as an error */
	assert_status(auth_service_init(&bad), RPC_STATUS_INTERNAL);
	stderr_back(saved);
}

static void test_text_is_stored_verbatim(void **state)
{
	(void)state;
	static const char first[] = "O'Brien \"the\" ; DROP TABLE users; -- \\ %s $1";
	static const char last[] = "Łukasz 李小龍 😀 Ünïcödé \xe2\x80\xae";
	char email[128], id[37];
	new_email(email, sizeof(email), "o'hara+tag");
	rpc_reply *reply;
	assert_status(register_full(email, "verbatim password", first, last, id, &reply),
	              RPC_STATUS_OK);
	rpc_reply_free(reply);
	as_caller a;
	assert_status(get_user(as(&a, id, 0), id, &reply), RPC_STATUS_OK);
	const Panthera__Users__V1__User *u = USERS(get_user_response)(reply);
	assert_string_equal(u->first_name, first);
	assert_string_equal(u->last_name, last);
	rpc_reply_free(reply);
	assert_int_equal(
	    sql_num("SELECT count(*) FROM users WHERE first_name = $1 AND last_name = $2", first,
	            last),
	    1);
	assert_status(login(email, "verbatim password", NULL), RPC_STATUS_OK);
	assert_int_equal(sql_num("SELECT count(*) FROM users", NULL, NULL) > 0, 1);
	char street[] = "221B Baker St. 'Flat' \"B\"; --";
	assert_status(add_address(as(&a, id, 0), id, street, "GB", 0, NULL, NULL), RPC_STATUS_OK);
}

static long long sessions_of(const char *refresh_token)
{
	return sql_num("SELECT count(*) FROM sessions WHERE family_id = (SELECT family_id FROM"
	               " sessions WHERE refresh_hash = sha256(convert_to($1, 'UTF8')))",
	               refresh_token, NULL);
}

static void test_sweeper_removes_only_dead_rows(void **state)
{
	(void)state;
	char email[128], id[37];
	new_user("sweep", "sweep password", id, email);
	tokens live, expired, revoked, rotated;
	assert_status(login(email, "sweep password", &live), RPC_STATUS_OK);
	assert_status(login(email, "sweep password", &expired), RPC_STATUS_OK);
	assert_status(login(email, "sweep password", &revoked), RPC_STATUS_OK);
	assert_status(login(email, "sweep password", &rotated), RPC_STATUS_OK);
	char first[64];
	snprintf(first, sizeof(first), "%s", rotated.refresh);
	assert_status(refresh(first, &rotated), RPC_STATUS_OK);
	sql_do(
	    "UPDATE sessions SET expires_at = now() - interval '2 days' WHERE family_id ="
	    " (SELECT family_id FROM sessions WHERE refresh_hash = sha256(convert_to($1, 'UTF8')))",
	    expired.refresh);
	as_caller a;
	assert_status(logout(as(&a, id, 0), revoked.refresh), RPC_STATUS_OK);
	sql_do(
	    "UPDATE sessions SET revoked_at = now() - interval '2 days' WHERE family_id ="
	    " (SELECT family_id FROM sessions WHERE refresh_hash = sha256(convert_to($1, 'UTF8')))",
	    revoked.refresh);
	assert_status(request_reset(email), RPC_STATUS_OK);
	char old_reset[64];
	snprintf(old_reset, sizeof(old_reset), "%s", sink_token);
	sql_do("UPDATE password_resets SET expires_at = now() - interval '2 days'"
	       " WHERE token_hash = sha256(convert_to($1, 'UTF8'))",
	       old_reset);
	assert_int_equal(sessions_of(rotated.refresh), 2);

	unsigned removed = 0;
	assert_status(auth_sweep_expired(&svc, &removed), RPC_STATUS_OK);
	assert_true(removed >= 3);
	assert_int_equal(sessions_of(expired.refresh), 0);
	assert_int_equal(sessions_of(revoked.refresh), 0);
	assert_int_equal(sessions_of(live.refresh), 1);
	assert_int_equal(sessions_of(rotated.refresh), 2); /* reuse detection still has it */
	assert_int_equal(sql_num("SELECT count(*) FROM password_resets"
	                         " WHERE token_hash = sha256(convert_to($1, 'UTF8'))",
	                         old_reset, NULL),
	                 0);
	assert_status(refresh(live.refresh, NULL), RPC_STATUS_OK);
	assert_status(refresh(first, NULL), RPC_STATUS_UNAUTHENTICATED); /* reuse, still caught */
	assert_status(refresh(rotated.refresh, NULL), RPC_STATUS_UNAUTHENTICATED);
	assert_status(refresh(expired.refresh, NULL), RPC_STATUS_UNAUTHENTICATED);
	assert_status(auth_sweep_expired(&svc, NULL), RPC_STATUS_OK);
}

/* Everything the service logs, while it handles secrets, holds none. */
static void test_no_secret_reaches_the_log(void **state)
{
	(void)state;
	char path[300];
	snprintf(path, sizeof(path), "%s/stderr.log", data_dir);
	int saved = stderr_to(path);
	log_set_level(LOG_DEBUG);

	char email[128], id[37];
	new_user("secret", "Secret Password 1", id, email);
	assert_status(register_full(email, "Secret Password 9", "A", "B", NULL, NULL),
	              RPC_STATUS_ALREADY_EXISTS);
	assert_status(register_full("x@example.com", "Short 7", "A", "B", NULL, NULL),
	              RPC_STATUS_INVALID_ARGUMENT);
	tokens t1, t2, t3;
	assert_status(login(email, "Wrong Password 2", NULL), RPC_STATUS_UNAUTHENTICATED);
	assert_status(login("unknown-secret@example.com", "Wrong Password 3", NULL),
	              RPC_STATUS_UNAUTHENTICATED);
	assert_status(login(email, "Secret Password 1", &t1), RPC_STATUS_OK);
	assert_status(refresh(t1.refresh, &t2), RPC_STATUS_OK);
	assert_status(refresh(t1.refresh, NULL), RPC_STATUS_UNAUTHENTICATED); /* reuse */
	assert_status(login(email, "Secret Password 1", &t3), RPC_STATUS_OK);
	assert_status(verify(t3.access), RPC_STATUS_OK);
	char broken[2100];
	snprintf(broken, sizeof(broken), "%sx", t3.access);
	assert_status(verify(broken), RPC_STATUS_UNAUTHENTICATED);
	as_caller a;
	assert_status(logout(as(&a, id, 0), t3.refresh), RPC_STATUS_OK);
	assert_status(request_reset(email), RPC_STATUS_OK);
	char reset1[64];
	snprintf(reset1, sizeof(reset1), "%s", sink_token);
	assert_status(confirm_reset(reset1, "Secret Password 4", NULL, 0), RPC_STATUS_OK);
	assert_status(confirm_reset(reset1, "Secret Password 5", NULL, 0),
	              RPC_STATUS_INVALID_ARGUMENT);
	pthread_mutex_lock(&seen_lock);
	int sent = mails;
	pthread_mutex_unlock(&seen_lock);
	svc.notifications = ch;
	assert_status(request_reset(email), RPC_STATUS_OK);
	char reset2[64];
	snprintf(reset2, sizeof(reset2), "%s", sink_token);
	assert_int_equal(wait_mails(sent + 1), sent + 1);
	svc.notifications = NULL;
	char boss[128];
	new_email(boss, sizeof(boss), "secret-boss");
	assert_status(auth_bootstrap_admin(&svc, boss, "Secret Password 6"), RPC_STATUS_OK);
	assert_status(auth_bootstrap_admin(&svc, boss, "Bad 7"), RPC_STATUS_INVALID_ARGUMENT);
	usleep(100 * 1000); /* the mail callback logs from a runtime thread */

	log_set_level(LOG_ERROR);
	stderr_back(saved);

	FILE *f = fopen(path, "r");
	assert_non_null(f);
	static char logged[1 << 20];
	size_t n = fread(logged, 1, sizeof(logged) - 1, f);
	fclose(f);
	logged[n] = '\0';
	/* it did log, about these very events */
	assert_non_null(strstr(logged, id));
	assert_non_null(strstr(logged, "auth.password_reset"));
	assert_non_null(strstr(logged, "auth.refresh_reuse"));
	assert_non_null(strstr(logged, "auth.login"));
	assert_non_null(strstr(logged, "auth.verify"));

	const char *secrets[] = {"Secret Password", "Wrong Password", "Short 7",
	                         "Bad 7",           t1.refresh,       t2.refresh,
	                         t3.refresh,        reset1,           reset2};
	for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++) {
		if (strstr(logged, secrets[i]) != NULL)
			fail_msg("the log holds secret %zu", i);
	}
	const char *tokens_[] = {t1.access, t2.access, t3.access};
	for (size_t i = 0; i < 3; i++) {
		const char *sig = strrchr(tokens_[i], '.') + 1;
		if (strstr(logged, sig) != NULL || strstr(logged, tokens_[i]) != NULL)
			fail_msg("the log holds access token %zu", i);
	}
	/* nor the stored hashes */
	db_conn *c;
	PGresult *r;
	assert_status(db_acquire(pool, 2000, &c), RPC_STATUS_OK);
	assert_status(db_exec(c, NULL,
	                      "SELECT password_hash FROM users UNION ALL"
	                      " SELECT encode(refresh_hash, 'hex') FROM sessions UNION ALL"
	                      " SELECT encode(token_hash, 'hex') FROM password_resets UNION ALL"
	                      " SELECT split_part(password_hash, '$', 5) FROM users UNION ALL"
	                      " SELECT split_part(password_hash, '$', 4) FROM users",
	                      0, NULL, &r),
	              RPC_STATUS_OK);
	assert_true(PQntuples(r) > 10);
	for (int i = 0; i < PQntuples(r); i++) {
		if (strstr(logged, PQgetvalue(r, i, 0)) != NULL)
			fail_msg("the log holds a stored hash: row %d", i);
	}
	PQclear(r);
	db_release(pool, c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_register),
	    cmocka_unit_test(test_login_right_and_wrong),
	    cmocka_unit_test(test_access_token_verifies_with_jwks),
	    cmocka_unit_test(test_verify_token_refuses_forgeries),
	    cmocka_unit_test(test_refresh_rotates_and_reuse_revokes),
	    cmocka_unit_test(test_logout),
	    cmocka_unit_test(test_password_reset),
	    cmocka_unit_test(test_reset_email_goes_through_notifications),
	    cmocka_unit_test(test_deactivation_blocks_login_and_refresh),
	    cmocka_unit_test(test_owner_checks),
	    cmocka_unit_test(test_admin_only_fields),
	    cmocka_unit_test(test_addresses_keep_one_default),
	    cmocka_unit_test(test_bootstrap_admin_is_idempotent),
	    cmocka_unit_test(test_keys_persist_and_rotate),
	    cmocka_unit_test(test_text_is_stored_verbatim),
	    cmocka_unit_test(test_sweeper_removes_only_dead_rows),
	    cmocka_unit_test(test_no_secret_reaches_the_log),
	};
	return cmocka_run_group_tests_name("auth", tests, setup, teardown);
}
