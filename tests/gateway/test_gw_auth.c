/*
 * test_gw_auth.c - the gateway's token checks (gateway-rest/gw_auth.h):
 * tokens signed by the auth service's real keyring (auth_keyring_load,
 * auth_jwt_sign, auth_keyring_rotate) and verified by the gateway through
 * the JWKS that a real RPC server on inproc:// serves (a test double of
 * AuthService whose GetJwks answers from that keyring, plus a P-256 key of
 * the test's own for ES256). Covers: valid tokens of both algorithms;
 * expiry, nbf and their leeway; issuer; audience; forged signatures; alg
 * "none"; HS256 keyed with the public key; a header alg other than the
 * key's; crit; malformed tokens; bad JWKs refused one by one; an unknown
 * kid refetched after a rotation; the refetch rate limit; the cache (a hit
 * gives the same claims, an expired or superseded entry is not served);
 * the caller metadata as the services read it; WWW-Authenticate; the
 * Bearer header; a failing JWKS fetch; verification racing key swaps.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "auth_jwt.h"
#include "gw_auth.h"
#include "panthera/base64.h"
#include "panthera/caller.h"
#include "panthera/ids.h"
#include "panthera/log.h"

#define assert_status(expr, want)                                                     \
	do {                                                                          \
		rpc_status got_ = (expr);                                             \
		if (got_ != (want))                                                   \
			fail_msg("%s: got %s, want %s", #expr, rpc_status_name(got_), \
			         rpc_status_name(want));                              \
	} while (0)

/* verify `tok` at `now`: the status and the reason both as expected */
#define assert_verify(a, tok, now, want_st, want_reason)                                  \
	do {                                                                              \
		jwt_claims c_;                                                            \
		jwt_status r_ = JWT_STATUS_COUNT;                                         \
		rpc_status s_ = gw_auth_verify((a), (tok), strlen(tok), (now), &c_, &r_); \
		if (s_ != (want_st) || r_ != (want_reason))                               \
			fail_msg("line %d: got %s (%s), want %s (%s)", __LINE__,          \
			         rpc_status_name(s_), jwt_status_text(r_),                \
			         rpc_status_name(want_st), jwt_status_text(want_reason)); \
	} while (0)

#define AUTH(x)   panthera_auth_v1_auth_service_##x
#define ISSUER    "panthera"
#define ES_KID    "es256-test-key"
#define WAIT_S    10 /* deadline of every wait */
#define MAX_CALLS 64

static char data_dir[64];
static auth_keyring *ring;
static EVP_PKEY *es_key; /* the test's own P-256 key, published next to the ring's */
static rpc_server *srv;
static rpc_channel *ch;
static int64_t T0; /* "now" of the tests: real time, so auth_jwt_sign's tokens fit */

/* ---- the AuthService test double ---- */

static pthread_mutex_t dbl_lock = PTHREAD_MUTEX_INITIALIZER;
static int jwks_calls;
static int64_t jwks_call_ms[MAX_CALLS]; /* monotonic time of each GetJwks */
static int publish_ring = 1, publish_es = 1;

static struct {
	char id[64];
	int has_id, admin;
} seen;

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *dup_call(rpc_call *call, const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = rpc_call_alloc(call, n);
	if (d != NULL)
		memcpy(d, s, n);
	return d;
}

static Panthera__Auth__V1__Jwk *new_jwk(rpc_call *call, const char *kty, const char *crv,
                                        const char *alg, const char *kid, const char *x,
                                        const char *y)
{
	Panthera__Auth__V1__Jwk *k = rpc_call_alloc(call, sizeof(*k));
	if (k == NULL)
		return NULL;
	panthera__auth__v1__jwk__init(k);
	k->kty = dup_call(call, kty);
	k->use = dup_call(call, "sig");
	k->alg = dup_call(call, alg);
	k->crv = dup_call(call, crv);
	k->kid = dup_call(call, kid);
	k->x = dup_call(call, x);
	if (y[0] != '\0') { /* EC only: an OKP key has no y at all */
		k->ec_coordinate_case = PANTHERA__AUTH__V1__JWK__EC_COORDINATE_Y;
		if ((k->y = dup_call(call, y)) == NULL)
			return NULL;
	}
	if (k->kty == NULL || k->use == NULL || k->alg == NULL || k->crv == NULL ||
	    k->kid == NULL || k->x == NULL)
		return NULL;
	return k;
}

typedef struct jwks_op {
	rpc_call *call;
	Panthera__Auth__V1__GetJwksResponse *resp;
} jwks_op;

static rpc_status add_ring_key(const char *kid, const char *x, void *arg)
{
	jwks_op *op = arg;
	Panthera__Auth__V1__Jwk *k = new_jwk(op->call, "OKP", "Ed25519", "EdDSA", kid, x, "");
	if (k == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	op->resp->keys[op->resp->n_keys++] = k;
	return RPC_STATUS_OK;
}

/* x and y of a P-256 key in base64url. */
static void p256_xy(EVP_PKEY *k, char x[44], char y[44])
{
	uint8_t pt[65];
	size_t n = 0;
	assert_int_equal(
	    EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt), &n), 1);
	assert_int_equal(n, 65);
	assert_int_equal(base64_encode(pt + 1, 32, BASE64_URL, x, 44, NULL), 0);
	assert_int_equal(base64_encode(pt + 33, 32, BASE64_URL, y, 44, NULL), 0);
}

static rpc_status get_jwks(rpc_call *call, const Panthera__Auth__V1__GetJwksRequest *req,
                           Panthera__Auth__V1__GetJwksResponse *resp, void *user)
{
	(void)req;
	(void)user;
	pthread_mutex_lock(&dbl_lock);
	if (jwks_calls < MAX_CALLS)
		jwks_call_ms[jwks_calls] = mono_ms();
	jwks_calls++;
	int ring_on = publish_ring, es_on = publish_es;
	pthread_mutex_unlock(&dbl_lock);
	resp->n_keys = 0;
	resp->keys = rpc_call_alloc(call, (AUTH_MAX_KEYS + 1) * sizeof(*resp->keys));
	if (resp->keys == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	jwks_op op = {call, resp};
	rpc_status st = ring_on ? auth_keyring_each(ring, add_ring_key, &op) : RPC_STATUS_OK;
	if (st == RPC_STATUS_OK && es_on) {
		char x[44], y[44];
		p256_xy(es_key, x, y);
		Panthera__Auth__V1__Jwk *k = new_jwk(call, "EC", "P-256", "ES256", ES_KID, x, y);
		if (k == NULL)
			return RPC_STATUS_RESOURCE_EXHAUSTED;
		resp->keys[resp->n_keys++] = k;
	}
	return st;
}

/* Logout stands for any service: it records the caller as services read it. */
static rpc_status logout(rpc_call *call, const Panthera__Auth__V1__LogoutRequest *req,
                         Panthera__Auth__V1__LogoutResponse *resp, void *user)
{
	(void)req;
	(void)resp;
	(void)user;
	caller c;
	caller_get(call, &c);
	pthread_mutex_lock(&dbl_lock);
	seen.has_id = c.id != NULL;
	snprintf(seen.id, sizeof(seen.id), "%s", c.id ? c.id : "");
	seen.admin = c.admin;
	pthread_mutex_unlock(&dbl_lock);
	return RPC_STATUS_OK;
}

static const panthera_auth_v1_auth_service_handlers double_handlers = {
    .get_jwks = get_jwks,
    .logout = logout,
};

static int jwks_call_count(void)
{
	pthread_mutex_lock(&dbl_lock);
	int n = jwks_calls;
	pthread_mutex_unlock(&dbl_lock);
	return n;
}

static void set_published(int ring_on, int es_on)
{
	pthread_mutex_lock(&dbl_lock);
	publish_ring = ring_on;
	publish_es = es_on;
	pthread_mutex_unlock(&dbl_lock);
}

/* ---- tokens ---- */

/* The newest key of the ring, read from its PEM file as auth wrote it. */
static EVP_PKEY *ring_signing_key(char kid[AUTH_KID_LEN + 1]);

static rpc_status first_kid(const char *kid, const char *x, void *arg)
{
	(void)x;
	snprintf(arg, AUTH_KID_LEN + 1, "%s", kid);
	return RPC_STATUS_CANCELLED; /* the newest only */
}

static EVP_PKEY *ring_signing_key(char kid[AUTH_KID_LEN + 1])
{
	kid[0] = '\0';
	auth_keyring_each(ring, first_kid, kid);
	char path[256];
	snprintf(path, sizeof(path), "%s/keys/%s.pem", data_dir, kid);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	assert_non_null(k);
	return k;
}

/* A token signed by auth itself. */
static void auth_token(const char *issuer, unsigned roles, int64_t nbf, int64_t exp, jwt_claims *c,
                       char *out, size_t cap)
{
	memset(c, 0, sizeof(*c));
	assert_status(id_uuid4(c->sub), RPC_STATUS_OK);
	assert_status(id_uuid4(c->sid), RPC_STATUS_OK);
	c->iat = T0;
	c->nbf = nbf;
	c->exp = exp;
	c->roles = roles;
	assert_status(auth_jwt_sign(ring, issuer, c, out, cap), RPC_STATUS_OK);
}

/* The unpadded base64url of in[0..n) into out, which has room for it. */
static void b64(const void *in, size_t n, char *out)
{
	size_t room = base64_encoded_len(n, BASE64_URL) + 1;
	assert_int_equal(base64_encode(in, n, BASE64_URL, out, room, NULL), 0);
}

/* The JWS signature of in[0..n) by `key` under `alg` ("EdDSA", "ES256" as
 * r || s, "HS256" keyed with secret[0..slen), anything else: none). */
static size_t jws_sign(const char *alg, EVP_PKEY *key, const uint8_t *secret, size_t slen,
                       const char *in, size_t n, uint8_t *sig, size_t cap)
{
	if (strcmp(alg, "HS256") == 0) {
		unsigned len = 0;
		assert_non_null(
		    HMAC(EVP_sha256(), secret, (int)slen, (const uint8_t *)in, n, sig, &len));
		return len;
	}
	if (key == NULL)
		return 0;
	int es = strcmp(alg, "ES256") == 0;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	uint8_t der[128];
	size_t dn = sizeof(der);
	assert_non_null(md);
	assert_int_equal(EVP_DigestSignInit(md, NULL, es ? EVP_sha256() : NULL, NULL, key), 1);
	assert_int_equal(
	    EVP_DigestSign(md, es ? der : sig, es ? &dn : &cap, (const uint8_t *)in, n), 1);
	EVP_MD_CTX_free(md);
	if (!es)
		return cap;
	/* DER ECDSA-Sig-Value to the JWS form r || s */
	const uint8_t *p = der;
	ECDSA_SIG *s = d2i_ECDSA_SIG(NULL, &p, (long)dn);
	assert_non_null(s);
	assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_r(s), sig, 32), 32);
	assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_s(s), sig + 32, 32), 32);
	ECDSA_SIG_free(s);
	return 64;
}

/* header.claims.signature from JSON texts, signed as `alg` says. */
static void forge(const char *header, const char *claims, const char *alg, EVP_PKEY *key,
                  const uint8_t *secret, size_t slen, char *out, size_t cap)
{
	size_t hn = strlen(header), cn = strlen(claims);
	assert_true(
	    base64_encoded_len(hn, BASE64_URL) + base64_encoded_len(cn, BASE64_URL) + 90 + 3 < cap);
	b64(header, hn, out);
	size_t o = strlen(out);
	out[o++] = '.';
	b64(claims, cn, out + o);
	o += strlen(out + o);
	uint8_t sig[128];
	size_t sn = jws_sign(alg, key, secret, slen, out, o, sig, sizeof(sig));
	out[o++] = '.';
	b64(sig, sn, out + o);
}

static void claims_json(char *out, size_t cap, const char *iss, const char *aud, int64_t nbf,
                        int64_t exp, const char *roles)
{
	char sub[37], sid[37];
	assert_status(id_uuid4(sub), RPC_STATUS_OK);
	assert_status(id_uuid4(sid), RPC_STATUS_OK);
	snprintf(out, cap,
	         "{\"iss\":\"%s\",\"sub\":\"%s\",\"aud\":%s,\"iat\":%lld,\"nbf\":%lld,"
	         "\"exp\":%lld,\"roles\":%s,\"sid\":\"%s\"}",
	         iss, sub, aud, (long long)T0, (long long)nbf, (long long)exp, roles, sid);
}

/* ---- set-up ---- */

static gw_auth *new_auth(void)
{
	gw_auth *a = NULL;
	gw_auth_opts o = {.issuer = ISSUER};
	assert_status(gw_auth_create(&a, &o), RPC_STATUS_OK);
	return a;
}

/* A verifier holding the JWKS the double serves now, fetched over RPC. */
static gw_auth *auth_with_jwks(void)
{
	gw_auth *a = new_auth();
	gw_keyset *ks = NULL;
	char err[128];
	assert_status(gw_jwks_fetch(ch, 0, &ks, err, sizeof(err)), RPC_STATUS_OK);
	int changed = 0;
	assert_status(gw_auth_install(a, ks, &changed), RPC_STATUS_OK);
	assert_int_equal(changed, 1);
	return a;
}

static int group_setup(void **state)
{
	(void)state;
	log_set_level(LOG_ERROR);
	T0 = (int64_t)time(NULL);
	snprintf(data_dir, sizeof(data_dir), "/tmp/panthera-gw-auth-XXXXXX");
	if (mkdtemp(data_dir) == NULL || auth_keyring_load(&ring, data_dir) != RPC_STATUS_OK)
		return -1;
	es_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (es_key == NULL)
		return -1;
	const char *url = "inproc://gw-auth-test";
	if (rpc_server_create(&srv, NULL) != RPC_STATUS_OK ||
	    AUTH(register)(srv, &double_handlers, NULL) != RPC_STATUS_OK ||
	    rpc_server_listen(srv, url) != RPC_STATUS_OK ||
	    rpc_server_start(srv) != RPC_STATUS_OK ||
	    rpc_channel_open(&ch, &url, 1, NULL) != RPC_STATUS_OK)
		return -1;
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	rpc_channel_close(ch);
	rpc_server_destroy(srv);
	auth_keyring_free(ring);
	EVP_PKEY_free(es_key);
	char path[128];
	snprintf(path, sizeof(path), "%s/keys", data_dir);
	DIR *d = opendir(path);
	struct dirent *e;
	while (d != NULL && (e = readdir(d)) != NULL) {
		char f[512];
		snprintf(f, sizeof(f), "%s/%s", path, e->d_name);
		if (e->d_name[0] != '.' || strcmp(e->d_name, ".lock") == 0)
			unlink(f);
	}
	if (d != NULL)
		closedir(d);
	rmdir(path);
	rmdir(data_dir);
	return 0;
}

/* ---- waiting for a refresh ---- */

typedef struct done_wait {
	pthread_mutex_t lock;
	pthread_cond_t cv;
	int calls;
	rpc_status st;
} done_wait;

static void done_wait_init(done_wait *w)
{
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cv, NULL);
	w->calls = 0;
	w->st = RPC_STATUS_UNKNOWN;
}

static void on_done(void *arg, rpc_status st)
{
	done_wait *w = arg;
	pthread_mutex_lock(&w->lock);
	w->calls++;
	w->st = st;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->lock);
}

/* Wait (at most WAIT_S) for the callback; its status. */
static rpc_status done_wait_for(done_wait *w)
{
	struct timespec dl;
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += WAIT_S;
	pthread_mutex_lock(&w->lock);
	while (w->calls == 0) {
		if (pthread_cond_timedwait(&w->cv, &w->lock, &dl) != 0)
			break;
	}
	int calls = w->calls;
	rpc_status st = w->st;
	pthread_mutex_unlock(&w->lock);
	if (calls == 0)
		fail_msg("the refresh callback did not come within %d s", WAIT_S);
	return st;
}

static void done_wait_fini(done_wait *w)
{
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cv);
}

/* ---- tests ---- */

static void test_valid_tokens_of_both_algorithms_verify(void **state)
{
	(void)state;
	gw_auth *a = auth_with_jwks();
	jwt_claims want, got;
	char tok[2048];
	auth_token(ISSUER, JWT_ROLE_USER | JWT_ROLE_ADMIN, T0, T0 + 900, &want, tok, sizeof(tok));
	jwt_status why = JWT_STATUS_COUNT;
	assert_status(gw_auth_verify(a, tok, strlen(tok), T0, &got, &why), RPC_STATUS_OK);
	assert_int_equal(why, JWT_OK);
	assert_string_equal(got.sub, want.sub);
	assert_string_equal(got.sid, want.sid);
	assert_int_equal(got.exp, T0 + 900);
	assert_int_equal(got.roles, JWT_ROLE_USER | JWT_ROLE_ADMIN);

	/* ES256 with the P-256 key of the JWKS */
	char claims[512];
	claims_json(claims, sizeof(claims), ISSUER, "\"panthera\"", T0, T0 + 60, "[\"USER\"]");
	forge("{\"alg\":\"ES256\",\"typ\":\"JWT\",\"kid\":\"" ES_KID "\"}", claims, "ES256", es_key,
	      NULL, 0, tok, sizeof(tok));
	assert_status(gw_auth_verify(a, tok, strlen(tok), T0, &got, &why), RPC_STATUS_OK);
	assert_int_equal(got.roles, JWT_ROLE_USER);

	/* ... but not with its signature in DER, or altered */
	char *dot = strrchr(tok, '.');
	dot[1] = dot[1] == 'A' ? 'B' : 'A';
	assert_verify(a, tok, T0, RPC_STATUS_UNAUTHENTICATED, JWT_ERR_SIGNATURE);
	{
		EVP_MD_CTX *md = EVP_MD_CTX_new();
		uint8_t der[128];
		size_t dn = sizeof(der);
		*dot = '\0';
		assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, es_key), 1);
		assert_int_equal(EVP_DigestSign(md, der, &dn, (uint8_t *)tok, strlen(tok)), 1);
		EVP_MD_CTX_free(md);
		*dot = '.';
		b64(der, dn, dot + 1);
		assert_verify(a, tok, T0, RPC_STATUS_UNAUTHENTICATED, JWT_ERR_SIG_ENCODING);
	}
	gw_auth_destroy(a);
}

static void test_exp_and_nbf_with_leeway(void **state)
{
	(void)state;
	gw_auth *a = auth_with_jwks();
	jwt_claims c;
	char tok[2048];
	auth_token(ISSUER, JWT_ROLE_USER, T0 - 900, T0 - 10, &c, tok, sizeof(tok));
	assert_verify(a, tok, T0, RPC_STATUS_OK, JWT_OK); /* within the leeway */
	auth_token(ISSUER, JWT_ROLE_USER, T0 - 900, T0 - JWT_LEEWAY_S, &c, tok, sizeof(tok));
	assert_verify(a, tok, T0, RPC_STATUS_UNAUTHENTICATED, JWT_ERR_EXPIRED);
	auth_token(ISSUER, JWT_ROLE_USER, T0 - 900, T0 - 3600, &c, tok, sizeof(tok));
	assert_verify(a, tok, T0, RPC_STATUS_UNAUTHENTICATED, JWT_ERR_EXPIRED);

	auth_token(ISSUER, JWT_ROLE_USER, T0 + 3600, T0 + 7200, &c, tok, sizeof(tok));
	assert_verify(a, tok, T0, RPC_STATUS_UNAUTHENTICATED, JWT_ERR_NOT_YET_VALID);
	auth_token(ISSUER, JWT_ROLE_USER, T0 + JWT_LEEWAY_S + 1, T0 + 900, &c, tok, sizeof(tok));
	assert_verify(a, tok, T0, RPC_STATUS_UNAUTHENTICATED, JWT_ERR_NOT_YET_VALID);
	auth_token(ISSUER, JWT_ROLE_USER, T0 + 20, T0 + 900, &c, tok, sizeof(tok));
	assert_verify(a, tok, T0, RPC_STATUS_OK, JWT_OK); /* clock skew */
	gw_auth_destroy(a);
}

static void test_issuer_and_audience(void **state)
{
	(void)state;
	gw_auth *a = auth_with_jwks();
	jwt_claims c;
	char tok[2048], claims[512], kid[AUTH_KID_LEN + 1], header[128];
	auth_token("elsewhere", JWT_ROLE_USER, T0, T0 + 900, &c, tok, sizeof(tok));
	assert_verify(a, tok, T0, RPC_STATUS_UNAUTHENTICATED, JWT_ERR_ISSUER);
	auth_token("panther", JWT_ROLE_USER, T0, T0 + 900, &c, tok, sizeof(tok));
	assert_verify(a, tok, T0, RPC_STATUS_UNAUTHENTICATED, JWT_ERR_ISSUER);

	EVP_PKEY *key = ring_signing_key(kid);
	snprintf(header, sizeof(header), "{\"alg\":\"EdDSA\",\"typ\":\"JWT\",\"kid\":\"%s\"}", kid);
	claims_json(claims, sizeof(claims), ISSUER, "\"other\"", T0, T0 + 60, "[\"USER\"]");
	forge(header, claims, "EdDSA", key, NULL, 0, tok, sizeof(tok));
	assert_verify(a, tok, T0, RPC_STATUS_UNAUTHENTICATED, JWT_ERR_AUDIENCE);
	claims_json(claims, sizeof(claims), ISSUER, "[\"other\",\"panthera\"]", T0, T0 + 60,
	            "[\"USER\"]");
	forge(header, claims, "EdDSA", key, NULL, 0, tok, sizeof(tok));
	assert_verify(a, tok, T0, RPC_STATUS_OK, JWT_OK);
	claims_json(claims, sizeof(claims), "panthera\\u0000x", "\"panthera\"", T0, T0 + 60,
	            "[\"USER\"]");
	forge(header, claims, "EdDSA", key, NULL, 0, tok, sizeof(tok));
	assert_verify(a, tok, T0, RPC_STATUS_UNAUTHENTICATED, JWT_ERR_CLAIMS);
	EVP_PKEY_free(key);
	gw_auth_destroy(a);
}

static void test_forged_signatures_are_refused(void **state)
{
	(void)state;
	gw_auth *a = auth_with_jwks();
	jwt_claims c;
	char tok[2048];
	auth_token(ISSUER, JWT_ROLE_USER, T0, T0 + 900, &c, tok, sizeof(tok));
	char *sig = strrchr(tok, '.') + 1;
	/* one bit of the signature's first byte: still canonical base64url */
	uint8_t raw[64];
	size_t n = 0;
	assert_int_equal(
	    base64_decode(sig, strlen(sig), BASE64_URL | BASE64_CANONICAL, raw, sizeof(raw), &n),
	    0);
	raw[0] ^= 1;
	b64(raw, n, sig);
	assert_verify(a, tok, T0, RPC_STATUS_UNAUTHENTICATED, JWT_ERR_SIGNATURE);
	raw[0] ^= 1;
	b64(raw, n, sig);
	assert_verify(a, tok, T0, RPC_STATUS_OK, JWT_OK);

	/* other claims under the same signature (an ADMIN role made up) */
	char *d1 = strchr(tok, '.'), claims[512], forged[2048];
	claims_json(claims, sizeof(claims), ISSUER, "\"panthera\"", T0, T0 + 900,
	            "[\"USER\",\"ADMIN\"]");
	size_t hl = (size_t)(d1 - tok) + 1;
	memcpy(forged, tok, hl);
	b64(claims, strlen(claims), forged + hl);
	snprintf(forged + strlen(forged), sizeof(forged) - strlen(forged), ".%s", sig);
	assert_verify(a, forged, T0, RPC_STATUS_UNAUTHENTICATED, JWT_ERR_SIGNATURE);

	/* a good signature by a key not in the JWKS, under a kid that is */
	char kid[AUTH_KID_LEN + 1], header[128];
	EVP_PKEY *key = ring_signing_key(kid), *other = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	assert_non_null(other);
	snprintf(header, sizeof(header), "{\"alg\":\"EdDSA\",\"typ\":\"JWT\",\"kid\":\"%s\"}", kid);
	forge(header, claims, "EdDSA", other, NULL, 0, forged, sizeof(forged));
	assert_verify(a, forged, T0, RPC_STATUS_UNAUTHENTICATED, JWT_ERR_SIGNATURE);
	EVP_PKEY_free(other);
	EVP_PKEY_free(key);
	gw_auth_destroy(a);
}

static void test_algorithms_come_from_the_key(void **state)
{
	(void)state;
	gw_auth *a = auth_with_jwks();
	char kid[AUTH_KID_LEN + 1], header[160], claims[512], tok[2048];
	EVP_PKEY *key = ring_signing_key(kid);
	claims_json(claims, sizeof(claims), ISSUER, "\"panthera\"", T0, T0 + 60,
	            "[\"USER\",\"ADMIN\"]");

	/* alg none, with and without a kid, in any case */
	static const char *const nones[] = {"none", "None", "NONE"};
	for (size_t i = 0; i < 3; i++) {
		snprintf(header, sizeof(header), "{\"alg\":\"%s\",\"typ\":\"JWT\",\"kid\":\"%s\"}",
		         nones[i], kid);
		forge(header, claims, "none", NULL, NULL, 0, tok, sizeof(tok));
		assert_verify(a, tok, T0, RPC_STATUS_UNAUTHENTICATED, JWT_ERR_ALG);
	}
	forge("{\"alg\":\"none\"}", claims, "none", NULL, NULL, 0, tok, sizeof(tok));
	assert_verify(a, tok, T0, RPC_STATUS_UNAUTHENTICATED, JWT_ERR_ALG);
	forge("{\"typ\":\"JWT\",\"kid\":\"x\"}", claims, "none", NULL, NULL, 0, tok, sizeof(tok));
	assert_verify(a, tok, T0, RPC_STATUS_UNAUTHENTICATED, JWT_ERR_ALG);

	/* HS256 keyed with the public key: its raw bytes, and its JWK text */
	uint8_t pub[32];
	size_t pn = sizeof(pub);
	assert_int_equal(EVP_PKEY_get_raw_public_key(key, pub, &pn), 1);
	char x[44];
	b64(pub, pn, x);
	snprintf(header, sizeof(header), "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"%s\"}", kid);
	forge(header, claims, "HS256", NULL, pub, pn, tok, sizeof(tok));
	assert_verify(a, tok, T0, RPC_STATUS_UNAUTHENTICATED, JWT_ERR_ALG);
	forge(header, claims, "HS256", NULL, (const uint8_t *)x, strlen(x), tok, sizeof(tok));
	assert_verify(a, tok, T0, RPC_STATUS_UNAUTHENTICATED, JWT_ERR_ALG);

	/* ES256 in the header of an EdDSA key (signed with the P-256 key) */
	snprintf(header, sizeof(header), "{\"alg\":\"ES256\",\"typ\":\"JWT\",\"kid\":\"%s\"}", kid);
	forge(header, claims, "ES256", es_key, NULL, 0, tok, sizeof(tok));
	assert_verify(a, tok, T0, RPC_STATUS_UNAUTHENTICATED, JWT_ERR_ALG_MISMATCH);
	/* and EdDSA in the header of the P-256 key (signed with the Ed25519 one) */
	forge("{\"alg\":\"EdDSA\",\"typ\":\"JWT\",\"kid\":\"" ES_KID "\"}", claims, "EdDSA", key,
	      NULL, 0, tok, sizeof(tok));
	assert_verify(a, tok, T0, RPC_STATUS_UNAUTHENTICATED, JWT_ERR_ALG_MISMATCH);

	/* crit, a second alg, another typ */
	snprintf(header, sizeof(header), "{\"alg\":\"EdDSA\",\"kid\":\"%s\",\"crit\":[\"exp\"]}",
	         kid);
	forge(header, claims, "EdDSA", key, NULL, 0, tok, sizeof(tok));
	assert_verify(a, tok, T0, RPC_STATUS_UNAUTHENTICATED, JWT_ERR_CRIT);
	snprintf(header, sizeof(header), "{\"alg\":\"EdDSA\",\"alg\":\"none\",\"kid\":\"%s\"}",
	         kid);
	forge(header, claims, "EdDSA", key, NULL, 0, tok, sizeof(tok));
	assert_verify(a, tok, T0, RPC_STATUS_UNAUTHENTICATED, JWT_ERR_HEADER);
	snprintf(header, sizeof(header), "{\"alg\":\"EdDSA\",\"typ\":\"JOSE\",\"kid\":\"%s\"}",
	         kid);
	forge(header, claims, "EdDSA", key, NULL, 0, tok, sizeof(tok));
	assert_verify(a, tok, T0, RPC_STATUS_UNAUTHENTICATED, JWT_ERR_TYP);
	/* the same header as auth's, for contrast: valid */
	snprintf(header, sizeof(header), "{\"alg\":\"EdDSA\",\"typ\":\"JWT\",\"kid\":\"%s\"}", kid);
	forge(header, claims, "EdDSA", key, NULL, 0, tok, sizeof(tok));
	assert_verify(a, tok, T0, RPC_STATUS_OK, JWT_OK);
	EVP_PKEY_free(key);
	gw_auth_destroy(a);
}

static void test_malformed_tokens(void **state)
{
	(void)state;
	gw_auth *a = auth_with_jwks();
	jwt_claims c;
	char tok[2048];
	auth_token(ISSUER, JWT_ROLE_USER, T0, T0 + 900, &c, tok, sizeof(tok));
	struct {
		const char *tok;
		jwt_status why;
	} cases[] = {
	    {".", JWT_ERR_FORM},
	    {"..", JWT_ERR_FORM},
	    {"a.b", JWT_ERR_FORM},
	    {"a.b.c.d", JWT_ERR_FORM},
	    {"a..c", JWT_ERR_FORM},
	    {"e30.e30.", JWT_ERR_ALG},                         /* {} has no alg */
	    {"eyJhbGciOiJub25lIn0.e30.", JWT_ERR_ALG},         /* {"alg":"none"} */
	    {"Bearer x.y.z", JWT_ERR_HEADER},                  /* a space is no base64url */
	    {"e30=.e30.AAAA", JWT_ERR_HEADER},                 /* padding */
	    {"aGVsbG8.e30.AAAA", JWT_ERR_HEADER},              /* "hello": not JSON */
	    {"W10.e30.AAAA", JWT_ERR_HEADER},                  /* [] */
	    {"eyJhbGciOiJFZERTQSJ9.e30.AAAA", JWT_ERR_NO_KID}, /* {"alg":"EdDSA"} */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		jwt_status why = JWT_STATUS_COUNT;
		if (gw_auth_verify(a, cases[i].tok, strlen(cases[i].tok), T0, &c, &why) !=
		        RPC_STATUS_UNAUTHENTICATED ||
		    why != cases[i].why)
			fail_msg("\"%s\": got %s, want %s", cases[i].tok, jwt_status_text(why),
			         jwt_status_text(cases[i].why));
	}
	jwt_status why;
	assert_status(gw_auth_verify(a, "", 0, T0, &c, &why), RPC_STATUS_UNAUTHENTICATED);
	assert_int_equal(why, JWT_ERR_NO_TOKEN);

	/* too many dots inside a real token, a NUL inside, a signature cut */
	char bad[2100];
	snprintf(bad, sizeof(bad), "%s.", tok);
	assert_verify(a, bad, T0, RPC_STATUS_UNAUTHENTICATED, JWT_ERR_FORM);
	snprintf(bad, sizeof(bad), "%s", tok);
	bad[5] = '\0';
	assert_status(gw_auth_verify(a, bad, strlen(tok), T0, &c, &why),
	              RPC_STATUS_UNAUTHENTICATED);
	assert_int_equal(why, JWT_ERR_HEADER);
	snprintf(bad, sizeof(bad), "%s", tok);
	bad[strlen(bad) - 4] = '\0';
	assert_verify(a, bad, T0, RPC_STATUS_UNAUTHENTICATED, JWT_ERR_SIG_ENCODING);

	/* huge: refused before anything is decoded or hashed */
	size_t hn = JWT_MAX_LEN + 1;
	char *huge = malloc(hn + 1);
	assert_non_null(huge);
	memset(huge, 'A', hn);
	huge[100] = huge[200] = '.';
	huge[hn] = '\0';
	assert_verify(a, huge, T0, RPC_STATUS_UNAUTHENTICATED, JWT_ERR_TOO_LONG);
	free(huge);

	/* signed claims that are not JSON, or lack a claim */
	char kid[AUTH_KID_LEN + 1], header[128];
	EVP_PKEY *key = ring_signing_key(kid);
	snprintf(header, sizeof(header), "{\"alg\":\"EdDSA\",\"typ\":\"JWT\",\"kid\":\"%s\"}", kid);
	forge(header, "{\"iss\":\"panthera\",", "EdDSA", key, NULL, 0, bad, sizeof(bad));
	assert_verify(a, bad, T0, RPC_STATUS_UNAUTHENTICATED, JWT_ERR_CLAIMS);
	forge(header, "{\"iss\":\"panthera\",\"aud\":\"panthera\"}", "EdDSA", key, NULL, 0, bad,
	      sizeof(bad));
	assert_verify(a, bad, T0, RPC_STATUS_UNAUTHENTICATED, JWT_ERR_MISSING_CLAIM);
	EVP_PKEY_free(key);
	gw_auth_destroy(a);
}

/* A response of hand-made JWKs, as the decoder would give it. */
typedef struct jwks_doc {
	Panthera__Auth__V1__GetJwksResponse resp;
	Panthera__Auth__V1__Jwk keys[20], *ptrs[20];
} jwks_doc;

static void doc_add(jwks_doc *d, const char *kty, const char *crv, const char *alg, const char *kid,
                    const char *x, const char *y, const char *use)
{
	Panthera__Auth__V1__Jwk *k = &d->keys[d->resp.n_keys];
	panthera__auth__v1__jwk__init(k);
	k->kty = (char *)kty;
	k->crv = (char *)crv;
	k->alg = (char *)alg;
	k->kid = (char *)kid;
	k->x = (char *)x;
	if (y != NULL && y[0] != '\0') { /* NULL or "": no y member at all */
		k->ec_coordinate_case = PANTHERA__AUTH__V1__JWK__EC_COORDINATE_Y;
		k->y = (char *)y;
	}
	k->use = (char *)use;
	d->ptrs[d->resp.n_keys++] = k;
}

static void test_keysets_keep_good_keys_and_refuse_the_rest(void **state)
{
	(void)state;
	char kid[AUTH_KID_LEN + 1], x[44], ex[44], ey[44], other_x[44], padded[48];
	EVP_PKEY *key = ring_signing_key(kid);
	uint8_t pub[32];
	size_t pn = sizeof(pub);
	assert_int_equal(EVP_PKEY_get_raw_public_key(key, pub, &pn), 1);
	b64(pub, pn, x);
	p256_xy(es_key, ex, ey);
	pub[0] ^= 0x55;
	b64(pub, pn, other_x);
	snprintf(padded, sizeof(padded), "%s=", x);
	char off_curve_y[44];
	snprintf(off_curve_y, sizeof(off_curve_y), "%s", ey);
	off_curve_y[10] = off_curve_y[10] == 'A' ? 'B' : 'A';
	char long_kid[80];
	memset(long_kid, 'k', 64);
	long_kid[64] = '\0';

	jwks_doc d;
	memset(&d, 0, sizeof(d));
	panthera__auth__v1__get_jwks_response__init(&d.resp);
	d.resp.keys = d.ptrs;
	doc_add(&d, "OKP", "Ed25519", "EdDSA", kid, x, "", "sig");     /* good */
	doc_add(&d, "EC", "P-256", "ES256", ES_KID, ex, ey, "");       /* good, no use */
	doc_add(&d, "OKP", "Ed25519", "EdDSA", kid, x, "", "sig");     /* same again: once */
	doc_add(&d, "RSA", "", "RS256", "rsa", x, "", "sig");          /* kty */
	doc_add(&d, "OKP", "Ed25519", "ES256", "ed-es", x, "", "sig"); /* alg of another type */
	doc_add(&d, "OKP", "X25519", "EdDSA", "x25519", x, "", "sig"); /* curve */
	doc_add(&d, "EC", "P-384", "ES256", "p384", ex, ey, "sig");    /* curve */
	doc_add(&d, "EC", "P-256", "ES256", "off-curve", ex, off_curve_y, ""); /* not a point */
	doc_add(&d, "OKP", "Ed25519", "EdDSA", "short", "AAAA", "", "sig");    /* 3 bytes */
	doc_add(&d, "OKP", "Ed25519", "EdDSA", "padded", padded, "", "sig");   /* "=" */
	doc_add(&d, "OKP", "Ed25519", "EdDSA", "enc", x, "", "enc");           /* use */
	doc_add(&d, "OKP", "Ed25519", "EdDSA", "", x, "", "sig");              /* no kid */
	doc_add(&d, "OKP", "Ed25519", "EdDSA", long_kid, x, "", "sig");        /* kid too long */
	doc_add(&d, "OKP", "Ed25519", "EdDSA", "twice", x, "", "sig");         /* one kid, */
	doc_add(&d, "OKP", "Ed25519", "EdDSA", "twice", other_x, "", "sig");   /* two keys */
	doc_add(&d, "OKP", "Ed25519", "", "no-alg", x, "", "sig");             /* alg missing */
	doc_add(&d, "OKP", "Ed25519", "EdDSA", "ed-y", x, ey, "sig");          /* a y (RFC 8037) */

	gw_keyset *ks = NULL;
	size_t refused = 0;
	assert_status(gw_keyset_from_jwks(&d.resp, &ks, &refused), RPC_STATUS_OK);
	assert_int_equal(gw_keyset_count(ks), 2);
	assert_int_equal(refused, 14);
	jwt_key k;
	assert_int_equal(gw_keyset_find(ks, kid, &k), 0);
	assert_int_equal(k.alg, JWT_ALG_EDDSA);
	assert_int_equal(gw_keyset_find(ks, ES_KID, &k), 0);
	assert_int_equal(k.alg, JWT_ALG_ES256);
	static const char *const gone[] = {"rsa",       "ed-es",  "x25519", "p384",
	                                   "off-curve", "short",  "padded", "enc",
	                                   "twice",     "no-alg", "ed-y",   ""};
	for (size_t i = 0; i < sizeof(gone) / sizeof(gone[0]); i++) {
		if (gw_keyset_find(ks, gone[i], &k) == 0)
			fail_msg("key \"%s\" should have been refused", gone[i]);
	}

	/* the same keys in another order are the same set; fewer are not */
	jwks_doc d2;
	memset(&d2, 0, sizeof(d2));
	panthera__auth__v1__get_jwks_response__init(&d2.resp);
	d2.resp.keys = d2.ptrs;
	doc_add(&d2, "EC", "P-256", "ES256", ES_KID, ex, ey, "sig");
	doc_add(&d2, "OKP", "Ed25519", "EdDSA", kid, x, "", "sig");
	gw_keyset *ks2 = NULL;
	assert_status(gw_keyset_from_jwks(&d2.resp, &ks2, NULL), RPC_STATUS_OK);
	assert_true(gw_keyset_equal(ks, ks2));
	d2.resp.n_keys = 1;
	gw_keyset *ks3 = NULL;
	assert_status(gw_keyset_from_jwks(&d2.resp, &ks3, NULL), RPC_STATUS_OK);
	assert_false(gw_keyset_equal(ks, ks3));

	/* an empty JWKS is an empty set; a NULL one an error */
	d2.resp.n_keys = 0;
	gw_keyset *empty = NULL;
	assert_status(gw_keyset_from_jwks(&d2.resp, &empty, NULL), RPC_STATUS_OK);
	assert_int_equal(gw_keyset_count(empty), 0);
	gw_keyset *none = (gw_keyset *)&d; /* must be reset to NULL */
	assert_status(gw_keyset_from_jwks(NULL, &none, NULL), RPC_STATUS_INVALID_ARGUMENT);
	assert_null(none);

	gw_keyset_release(empty);
	gw_keyset_release(ks3);
	gw_keyset_release(ks2);
	gw_keyset_release(ks);
	EVP_PKEY_free(key);
}

static void test_no_key_set_yet_is_unavailable(void **state)
{
	(void)state;
	gw_auth *a = new_auth();
	jwt_claims c;
	char tok[2048];
	auth_token(ISSUER, JWT_ROLE_USER, T0, T0 + 900, &c, tok, sizeof(tok));
	assert_verify(a, tok, T0, RPC_STATUS_UNAVAILABLE, JWT_ERR_UNKNOWN_KID);
	assert_null(gw_auth_keys(a));
	gw_auth_destroy(a);

	gw_auth_opts o = {.issuer = ""};
	assert_status(gw_auth_create(&a, &o), RPC_STATUS_INVALID_ARGUMENT);
	assert_null(a);
	assert_status(gw_auth_create(&a, NULL), RPC_STATUS_INVALID_ARGUMENT);
}

static void test_unknown_kid_is_refetched_after_rotation(void **state)
{
	(void)state;
	gw_auth *a = auth_with_jwks();
	jwt_claims c, got;
	char old_tok[2048], new_tok[2048];
	auth_token(ISSUER, JWT_ROLE_USER, T0, T0 + 900, &c, old_tok, sizeof(old_tok));
	gw_jwks_refresher *r = NULL;
	gw_jwks_refresher_opts o = {.min_interval_ms = 100};
	assert_status(gw_jwks_refresher_start(&r, a, gw_jwks_fetch_rpc, ch, &o), RPC_STATUS_OK);

	char kid[AUTH_KID_LEN + 1];
	assert_status(auth_keyring_rotate(ring, kid), RPC_STATUS_OK);
	auth_token(ISSUER, JWT_ROLE_USER, T0, T0 + 900, &c, new_tok, sizeof(new_tok));
	assert_verify(a, new_tok, T0, RPC_STATUS_UNAUTHENTICATED, JWT_ERR_UNKNOWN_KID);

	done_wait w;
	done_wait_init(&w);
	int before = jwks_call_count();
	assert_status(gw_jwks_refresher_request(r, on_done, &w), RPC_STATUS_OK);
	assert_status(done_wait_for(&w), RPC_STATUS_OK);
	assert_int_equal(jwks_call_count(), before + 1);
	assert_status(gw_auth_verify(a, new_tok, strlen(new_tok), T0, &got, NULL), RPC_STATUS_OK);
	assert_string_equal(got.sub, c.sub);
	/* the old key is still published: its tokens keep verifying */
	assert_verify(a, old_tok, T0, RPC_STATUS_OK, JWT_OK);
	gw_auth_stats s;
	gw_auth_get_stats(a, &s);
	assert_int_equal(s.generation, 2);
	assert_int_equal(s.keys, 3);

	gw_jwks_refresher_stats rs;
	gw_jwks_refresher_get_stats(r, &rs);
	assert_int_equal(rs.fetches, 1);
	assert_int_equal(rs.failures, 0);
	assert_true(rs.last_ok >= T0);
	gw_jwks_refresher_stop(r);
	done_wait_fini(&w);
	gw_auth_destroy(a);
}

static void test_refetches_are_rate_limited(void **state)
{
	(void)state;
	gw_auth *a = auth_with_jwks();
	gw_jwks_refresher *r = NULL;
	const int interval = 1000;
	gw_jwks_refresher_opts o = {.min_interval_ms = interval, .max_waiters = 4};
	assert_status(gw_jwks_refresher_start(&r, a, gw_jwks_fetch_rpc, ch, &o), RPC_STATUS_OK);
	int before = jwks_call_count();

	/* a flood: one fetch at once for all of it */
	done_wait first, second;
	done_wait_init(&first);
	done_wait_init(&second);
	for (int i = 0; i < 500; i++)
		assert_status(gw_jwks_refresher_request(r, NULL, NULL), RPC_STATUS_OK);
	assert_status(gw_jwks_refresher_request(r, on_done, &first), RPC_STATUS_OK);
	assert_status(done_wait_for(&first), RPC_STATUS_OK);
	int after_first = jwks_call_count();
	assert_true(after_first - before >= 1);
	assert_true(after_first - before <= 2); /* the flood may straddle the first fetch */

	/* more requests within the interval: one more fetch, not before its end */
	for (int i = 0; i < 500; i++)
		assert_status(gw_jwks_refresher_request(r, NULL, NULL), RPC_STATUS_OK);
	assert_status(gw_jwks_refresher_request(r, on_done, &second), RPC_STATUS_OK);
	/* the waiters are bounded: the fifth is refused, the fetch still comes */
	done_wait extra[4];
	for (int i = 0; i < 4; i++)
		done_wait_init(&extra[i]);
	int queued = 0;
	rpc_status st = RPC_STATUS_OK;
	while (queued < 4 &&
	       (st = gw_jwks_refresher_request(r, on_done, &extra[queued])) == RPC_STATUS_OK)
		queued++;
	assert_status(st, RPC_STATUS_RESOURCE_EXHAUSTED);
	assert_int_equal(queued, 3);
	assert_status(done_wait_for(&second), RPC_STATUS_OK);
	int total = jwks_call_count();
	assert_int_equal(total, after_first + 1);
	pthread_mutex_lock(&dbl_lock);
	int64_t gap = jwks_call_ms[total - 1] - jwks_call_ms[total - 2];
	pthread_mutex_unlock(&dbl_lock);
	if (gap < interval - 50) /* the server's clock reads a little after the start */
		fail_msg("two fetches %lld ms apart, fewer than %d", (long long)gap, interval);
	for (int i = 0; i < queued; i++)
		assert_status(done_wait_for(&extra[i]), RPC_STATUS_OK);
	for (int i = 0; i < 4; i++)
		done_wait_fini(&extra[i]);
	gw_jwks_refresher_stats rs;
	gw_jwks_refresher_get_stats(r, &rs);
	assert_int_equal(rs.fetches, (uint64_t)(total - before));

	/* a request at stop: its callback runs, CANCELLED, before stop returns */
	done_wait last;
	done_wait_init(&last);
	assert_status(gw_jwks_refresher_request(r, on_done, &last), RPC_STATUS_OK);
	gw_jwks_refresher_stop(r);
	pthread_mutex_lock(&last.lock);
	assert_int_equal(last.calls, 1);
	assert_status(last.st, RPC_STATUS_CANCELLED);
	pthread_mutex_unlock(&last.lock);
	done_wait_fini(&last);
	done_wait_fini(&first);
	done_wait_fini(&second);
	gw_auth_destroy(a);
}

static void test_cache_serves_only_fresh_entries(void **state)
{
	(void)state;
	gw_auth *a = auth_with_jwks();
	jwt_claims want, c1, c2;
	char tok[2048];
	gw_auth_stats s0, s;
	auth_token(ISSUER, JWT_ROLE_USER | JWT_ROLE_ADMIN, T0, T0 + 900, &want, tok, sizeof(tok));
	gw_auth_get_stats(a, &s0);
	assert_status(gw_auth_verify(a, tok, strlen(tok), T0, &c1, NULL), RPC_STATUS_OK);
	assert_status(gw_auth_verify(a, tok, strlen(tok), T0 + 29, &c2, NULL), RPC_STATUS_OK);
	gw_auth_get_stats(a, &s);
	assert_int_equal(s.cache_misses - s0.cache_misses, 1);
	assert_int_equal(s.cache_hits - s0.cache_hits, 1);
	assert_memory_equal(&c1, &c2, sizeof(c1));
	assert_string_equal(c2.sub, want.sub);

	/* past the TTL: verified again (and still valid) */
	assert_status(gw_auth_verify(a, tok, strlen(tok), T0 + 30, &c2, NULL), RPC_STATUS_OK);
	gw_auth_get_stats(a, &s);
	assert_int_equal(s.cache_misses - s0.cache_misses, 2);

	/* a token about to expire is cached only until its exp */
	char short_tok[2048];
	auth_token(ISSUER, JWT_ROLE_USER, T0, T0 + 10, &want, short_tok, sizeof(short_tok));
	assert_verify(a, short_tok, T0, RPC_STATUS_OK, JWT_OK);
	assert_verify(a, short_tok, T0 + 5, RPC_STATUS_OK, JWT_OK); /* a hit */
	gw_auth_get_stats(a, &s0);
	assert_verify(a, short_tok, T0 + 10 + JWT_LEEWAY_S, RPC_STATUS_UNAUTHENTICATED,
	              JWT_ERR_EXPIRED);
	gw_auth_get_stats(a, &s);
	assert_int_equal(s.cache_hits, s0.cache_hits);

	/* accepted within the leeway after its exp, but never cached past it */
	char late_tok[2048];
	auth_token(ISSUER, JWT_ROLE_USER, T0 - 900, T0 - 20, &want, late_tok, sizeof(late_tok));
	assert_verify(a, late_tok, T0, RPC_STATUS_OK, JWT_OK);
	assert_verify(a, late_tok, T0 + 15, RPC_STATUS_UNAUTHENTICATED, JWT_ERR_EXPIRED);

	/* a key set without the token's key: the cached entry is not served */
	assert_verify(a, tok, T0 + 31, RPC_STATUS_OK, JWT_OK);
	set_published(0, 1);
	gw_keyset *ks = NULL;
	assert_status(gw_jwks_fetch(ch, 0, &ks, NULL, 0), RPC_STATUS_OK);
	set_published(1, 1);
	int changed = 0;
	assert_status(gw_auth_install(a, ks, &changed), RPC_STATUS_OK);
	assert_int_equal(changed, 1);
	assert_verify(a, tok, T0 + 32, RPC_STATUS_UNAUTHENTICATED, JWT_ERR_UNKNOWN_KID);

	/* the same keys again change nothing */
	assert_status(gw_jwks_fetch(ch, 0, &ks, NULL, 0), RPC_STATUS_OK);
	assert_status(gw_auth_install(a, ks, &changed), RPC_STATUS_OK);
	assert_int_equal(changed, 1);
	assert_status(gw_jwks_fetch(ch, 0, &ks, NULL, 0), RPC_STATUS_OK);
	assert_status(gw_auth_install(a, ks, &changed), RPC_STATUS_OK);
	assert_int_equal(changed, 0);
	gw_auth_destroy(a);

	/* a TTL longer than the token's life: its exp still ends the entry */
	gw_auth_opts o = {.issuer = ISSUER, .cache_ttl_s = 600};
	assert_status(gw_auth_create(&a, &o), RPC_STATUS_OK);
	assert_status(gw_jwks_fetch(ch, 0, &ks, NULL, 0), RPC_STATUS_OK);
	assert_status(gw_auth_install(a, ks, NULL), RPC_STATUS_OK);
	auth_token(ISSUER, JWT_ROLE_USER, T0, T0 + 10, &want, short_tok, sizeof(short_tok));
	assert_verify(a, short_tok, T0, RPC_STATUS_OK, JWT_OK);
	assert_verify(a, short_tok, T0 + 9, RPC_STATUS_OK, JWT_OK);
	gw_auth_get_stats(a, &s);
	assert_int_equal(s.cache_hits, 1);
	assert_verify(a, short_tok, T0 + 10 + JWT_LEEWAY_S, RPC_STATUS_UNAUTHENTICATED,
	              JWT_ERR_EXPIRED);
	gw_auth_destroy(a);
}

static void test_small_cache_evicts_and_stays_correct(void **state)
{
	(void)state;
	gw_auth *a = NULL;
	gw_auth_opts o = {.issuer = ISSUER, .cache_entries = 1};
	assert_status(gw_auth_create(&a, &o), RPC_STATUS_OK);
	gw_keyset *ks = NULL;
	assert_status(gw_jwks_fetch(ch, 0, &ks, NULL, 0), RPC_STATUS_OK);
	assert_status(gw_auth_install(a, ks, NULL), RPC_STATUS_OK);
	enum { N = 200 };
	static char toks[N][1024];
	static jwt_claims want[N];
	for (int i = 0; i < N; i++)
		auth_token(ISSUER, JWT_ROLE_USER, T0, T0 + 900 + i, &want[i], toks[i],
		           sizeof(toks[i]));
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < N; i++) {
			jwt_claims got;
			assert_status(gw_auth_verify(a, toks[i], strlen(toks[i]), T0, &got, NULL),
			              RPC_STATUS_OK);
			assert_string_equal(got.sub, want[i].sub);
			assert_int_equal(got.exp, want[i].exp);
		}
	}
	gw_auth_stats s;
	gw_auth_get_stats(a, &s);
	/* 64 entries for 200 tokens: most of the second round missed */
	assert_int_equal(s.cache_hits + s.cache_misses, 2 * N);
	assert_true(s.cache_misses > N);
	gw_auth_destroy(a);
}

static void test_caller_metadata_reaches_services(void **state)
{
	(void)state;
	gw_auth *a = auth_with_jwks();
	jwt_claims want, c;
	char tok[2048];
	static const struct {
		unsigned roles;
		size_t n;
		const char *text;
		int admin;
	} cases[] = {
	    {JWT_ROLE_USER, 2, "USER", 0},
	    {JWT_ROLE_USER | JWT_ROLE_ADMIN, 2, "USER,ADMIN", 1},
	};
	for (size_t i = 0; i < 2; i++) {
		auth_token(ISSUER, cases[i].roles, T0, T0 + 900, &want, tok, sizeof(tok));
		assert_status(gw_auth_verify(a, tok, strlen(tok), T0, &c, NULL), RPC_STATUS_OK);
		rpc_metadata_entry md[GW_CALLER_MD_MAX];
		assert_int_equal(gw_auth_caller_metadata(&c, md), cases[i].n);
		assert_string_equal(md[0].key, "x-caller-id");
		assert_string_equal(md[0].value, want.sub);
		assert_string_equal(md[1].key, "x-caller-roles");
		assert_string_equal(md[1].value, cases[i].text);

		/* what a service reads of it (panthera/caller.h) */
		Panthera__Auth__V1__LogoutRequest req = PANTHERA__AUTH__V1__LOGOUT_REQUEST__INIT;
		rpc_call_opts opts = {.metadata = md, .n_metadata = 2};
		rpc_reply *reply = NULL;
		assert_status(AUTH(logout)(ch, &req, &opts, NULL, &reply), RPC_STATUS_OK);
		rpc_reply_free(reply);
		pthread_mutex_lock(&dbl_lock);
		assert_true(seen.has_id);
		assert_string_equal(seen.id, want.sub);
		assert_int_equal(seen.admin, cases[i].admin);
		pthread_mutex_unlock(&dbl_lock);
	}
	c.roles = 0;
	rpc_metadata_entry md[GW_CALLER_MD_MAX];
	assert_int_equal(gw_auth_caller_metadata(&c, md), 1);
	c.roles = JWT_ROLE_ADMIN;
	assert_int_equal(gw_auth_caller_metadata(&c, md), 2);
	assert_string_equal(md[1].value, "ADMIN");

	assert_true(gw_auth_metadata_reserved("x-caller-id", 11));
	assert_true(gw_auth_metadata_reserved("X-Caller-Roles", 14));
	assert_false(gw_auth_metadata_reserved("x-caller-idx", 12));
	assert_false(gw_auth_metadata_reserved("x-caller", 8));
	assert_false(gw_auth_metadata_reserved("x-request-id", 12));
	gw_auth_destroy(a);
}

static void test_www_authenticate_and_bearer(void **state)
{
	(void)state;
	assert_string_equal(gw_auth_www_authenticate(0, JWT_ERR_NO_TOKEN),
	                    "Bearer realm=\"panthera\"");
	assert_string_equal(gw_auth_www_authenticate(1, JWT_ERR_EXPIRED),
	                    "Bearer realm=\"panthera\", error=\"invalid_token\", "
	                    "error_description=\"The access token expired\"");
	assert_string_equal(gw_auth_www_authenticate(1, JWT_ERR_SIGNATURE),
	                    "Bearer realm=\"panthera\", error=\"invalid_token\", "
	                    "error_description=\"The access token is not valid\"");
	assert_string_equal(gw_auth_www_authenticate(1, JWT_ERR_FORM),
	                    "Bearer realm=\"panthera\", error=\"invalid_token\", "
	                    "error_description=\"The access token is malformed\"");
	assert_non_null(
	    strstr(gw_auth_www_authenticate(1, JWT_ERR_NOT_YET_VALID), "not valid yet"));
	/* every reason gives a header value of RFC 6750's characters */
	for (int r = 0; r < JWT_STATUS_COUNT; r++) {
		const char *v = gw_auth_www_authenticate(1, (jwt_status)r);
		assert_non_null(strstr(v, "error=\"invalid_token\""));
		for (const char *p = v; *p; p++)
			assert_true(*p >= 0x20 && *p < 0x7f && *p != '\\');
	}

	const char *t;
	size_t n;
	static const char v1[] = "Bearer abc.DEF-_.x~+/==";
	assert_int_equal(gw_auth_bearer(v1, strlen(v1), &t, &n), 1);
	assert_int_equal(n, strlen("abc.DEF-_.x~+/=="));
	assert_memory_equal(t, "abc.DEF-_.x~+/==", n);
	static const char v2[] = "  bEaReR   tok  ";
	assert_int_equal(gw_auth_bearer(v2, strlen(v2), &t, &n), 1);
	assert_int_equal(n, 3);
	assert_memory_equal(t, "tok", 3);
	static const char *const none[] = {"", "Basic dXNlcjpwYXNz", "Bearerx y", "Bear"};
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(gw_auth_bearer(none[i], strlen(none[i]), &t, &n), 0);
	assert_int_equal(gw_auth_bearer(NULL, 0, &t, &n), 0);
	static const char *const bad[] = {"Bearer",     "Bearer ",      "Bearer a b",
	                                  "Bearer a=b", "Bearer \"a\"", "Bearer a,b"};
	for (size_t i = 0; i < 6; i++) {
		if (gw_auth_bearer(bad[i], strlen(bad[i]), &t, &n) != -1)
			fail_msg("\"%s\" should be a malformed Bearer", bad[i]);
		assert_null(t);
	}
	/* the length is the header's, not a NUL's */
	static const char v3[] = "Bearer abcdef";
	assert_int_equal(gw_auth_bearer(v3, 10, &t, &n), 1);
	assert_int_equal(n, 3);
}

static rpc_status failing_fetch(void *arg, gw_keyset **out, char *err, size_t errlen)
{
	int *calls = arg;
	__atomic_add_fetch(calls, 1, __ATOMIC_SEQ_CST);
	*out = NULL;
	snprintf(err, errlen, "auth is down (test)");
	return RPC_STATUS_UNAVAILABLE;
}

static void test_failed_fetches_keep_the_keys(void **state)
{
	(void)state;
	/* no server behind the URL */
	rpc_channel *dead = NULL;
	const char *url = "inproc://gw-auth-test-nobody";
	rpc_channel_opts co = {.connect_wait_ms = 50};
	assert_status(rpc_channel_open(&dead, &url, 1, &co), RPC_STATUS_OK);
	gw_keyset *ks = (gw_keyset *)&co;
	char err[128] = "";
	assert_status(gw_jwks_fetch(dead, 200, &ks, err, sizeof(err)), RPC_STATUS_UNAVAILABLE);
	assert_null(ks);
	assert_true(err[0] != '\0');
	rpc_channel_close(dead);
	assert_status(gw_jwks_fetch(NULL, 0, &ks, err, sizeof(err)), RPC_STATUS_INVALID_ARGUMENT);

	/* a JWKS with no usable key installs nothing */
	gw_auth *a = auth_with_jwks();
	jwt_claims c;
	char tok[2048];
	auth_token(ISSUER, JWT_ROLE_USER, T0, T0 + 900, &c, tok, sizeof(tok));
	gw_jwks_refresher *r = NULL;
	gw_jwks_refresher_opts o = {.min_interval_ms = 10};
	assert_status(gw_jwks_refresher_start(&r, a, gw_jwks_fetch_rpc, ch, &o), RPC_STATUS_OK);
	set_published(0, 0);
	done_wait w;
	done_wait_init(&w);
	assert_status(gw_jwks_refresher_request(r, on_done, &w), RPC_STATUS_OK);
	rpc_status st = done_wait_for(&w);
	set_published(1, 1);
	assert_status(st, RPC_STATUS_FAILED_PRECONDITION);
	assert_verify(a, tok, T0, RPC_STATUS_OK, JWT_OK);
	gw_jwks_refresher_stats rs;
	gw_jwks_refresher_get_stats(r, &rs);
	assert_int_equal(rs.failures, 1);
	assert_status(rs.last_status, RPC_STATUS_FAILED_PRECONDITION);
	gw_jwks_refresher_stop(r);
	done_wait_fini(&w);

	/* a verifier that never had keys: the refresher fetches at once, and
	 * retries a failing fetch by itself */
	gw_auth *empty = new_auth();
	int calls = 0;
	o.min_interval_ms = 20;
	assert_status(gw_jwks_refresher_start(&r, empty, failing_fetch, &calls, &o), RPC_STATUS_OK);
	done_wait w2;
	done_wait_init(&w2);
	assert_status(gw_jwks_refresher_request(r, on_done, &w2), RPC_STATUS_OK);
	assert_status(done_wait_for(&w2), RPC_STATUS_UNAVAILABLE);
	done_wait w3;
	done_wait_init(&w3);
	assert_status(gw_jwks_refresher_request(r, on_done, &w3), RPC_STATUS_OK);
	assert_status(done_wait_for(&w3), RPC_STATUS_UNAVAILABLE);
	assert_true(__atomic_load_n(&calls, __ATOMIC_SEQ_CST) >= 2);
	gw_jwks_refresher_stop(r);
	assert_null(gw_auth_keys(empty));
	done_wait_fini(&w2);
	done_wait_fini(&w3);
	gw_auth_destroy(empty);
	gw_auth_destroy(a);
}

/* ---- verification racing key swaps ---- */

typedef struct racer {
	gw_auth *a;
	const char *toks[4];
	int bad;
} racer;

static void *race_verify(void *arg)
{
	racer *r = arg;
	for (int i = 0; i < 2000; i++) {
		jwt_claims c;
		const char *t = r->toks[i % 4];
		/* now moves so entries expire, and both paths run */
		if (gw_auth_verify(r->a, t, strlen(t), T0 + (i % 50), &c, NULL) != RPC_STATUS_OK)
			r->bad++;
	}
	return NULL;
}

static void test_verification_races_key_swaps(void **state)
{
	(void)state;
	gw_auth *a = auth_with_jwks();
	char toks[4][2048];
	jwt_claims c;
	for (int i = 0; i < 3; i++)
		auth_token(ISSUER, JWT_ROLE_USER, T0, T0 + 900, &c, toks[i], sizeof(toks[i]));
	char claims[512];
	claims_json(claims, sizeof(claims), ISSUER, "\"panthera\"", T0, T0 + 900, "[\"USER\"]");
	forge("{\"alg\":\"ES256\",\"kid\":\"" ES_KID "\"}", claims, "ES256", es_key, NULL, 0,
	      toks[3], sizeof(toks[3]));

	/* two sets that both verify every token but differ (a spare key), so
	 * each install swaps */
	gw_keyset *fetched = NULL, *with_spare = NULL;
	assert_status(gw_jwks_fetch(ch, 0, &fetched, NULL, 0), RPC_STATUS_OK);
	char kid[AUTH_KID_LEN + 1], x[44], ex[44], ey[44], spare_x[44];
	EVP_PKEY *key = ring_signing_key(kid), *spare = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	assert_non_null(spare);
	uint8_t pub[32];
	size_t pn = sizeof(pub);
	assert_int_equal(EVP_PKEY_get_raw_public_key(key, pub, &pn), 1);
	b64(pub, pn, x);
	assert_int_equal(EVP_PKEY_get_raw_public_key(spare, pub, &pn), 1);
	b64(pub, pn, spare_x);
	p256_xy(es_key, ex, ey);
	jwks_doc d;
	memset(&d, 0, sizeof(d));
	panthera__auth__v1__get_jwks_response__init(&d.resp);
	d.resp.keys = d.ptrs;
	doc_add(&d, "OKP", "Ed25519", "EdDSA", kid, x, "", "sig");
	doc_add(&d, "EC", "P-256", "ES256", ES_KID, ex, ey, "sig");
	doc_add(&d, "OKP", "Ed25519", "EdDSA", "spare", spare_x, "", "sig");
	assert_status(gw_keyset_from_jwks(&d.resp, &with_spare, NULL), RPC_STATUS_OK);
	assert_int_equal(gw_keyset_count(with_spare), 3);
	assert_false(gw_keyset_equal(fetched, with_spare));

	racer rs[3];
	pthread_t th[3];
	for (int i = 0; i < 3; i++) {
		rs[i] = (racer){.a = a, .toks = {toks[0], toks[1], toks[2], toks[3]}};
		assert_int_equal(pthread_create(&th[i], NULL, race_verify, &rs[i]), 0);
	}
	int swaps = 0;
	for (int i = 0; i < 400; i++) {
		int changed = 0;
		gw_keyset *next = gw_keyset_ref(i % 2 ? fetched : with_spare);
		assert_status(gw_auth_install(a, next, &changed), RPC_STATUS_OK);
		swaps += changed;
	}
	for (int i = 0; i < 3; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(rs[i].bad, 0);
	}
	assert_int_equal(swaps, 400);
	gw_keyset_release(fetched);
	gw_keyset_release(with_spare);
	EVP_PKEY_free(spare);
	EVP_PKEY_free(key);
	gw_auth_destroy(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_valid_tokens_of_both_algorithms_verify),
	    cmocka_unit_test(test_exp_and_nbf_with_leeway),
	    cmocka_unit_test(test_issuer_and_audience),
	    cmocka_unit_test(test_forged_signatures_are_refused),
	    cmocka_unit_test(test_algorithms_come_from_the_key),
	    cmocka_unit_test(test_malformed_tokens),
	    cmocka_unit_test(test_keysets_keep_good_keys_and_refuse_the_rest),
	    cmocka_unit_test(test_no_key_set_yet_is_unavailable),
	    cmocka_unit_test(test_cache_serves_only_fresh_entries),
	    cmocka_unit_test(test_small_cache_evicts_and_stays_correct),
	    cmocka_unit_test(test_caller_metadata_reaches_services),
	    cmocka_unit_test(test_www_authenticate_and_bearer),
	    cmocka_unit_test(test_failed_fetches_keep_the_keys),
	    cmocka_unit_test(test_verification_races_key_swaps),
	    /* these two rotate the ring's key: last */
	    cmocka_unit_test(test_unknown_kid_is_refetched_after_rotation),
	    cmocka_unit_test(test_refetches_are_rate_limited),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
