/*
 * fuzz_gateway_jwt.c - libFuzzer target of the gateway's token checks
 * (gateway-rest/gw_auth.h): gw_auth_verify() against a fixed key set (one
 * Ed25519 key "ed", one P-256 key "es", both built by gw_keyset_from_jwks
 * from a JWKS), with the verified-token cache on, at the fixed time
 * 1700000000; and the JWK reader. The first input byte picks the mode
 * (byte % 4; the seeds start with the digits '0'..'3'):
 *   0  the rest is an Authorization header value: gw_auth_bearer(), then
 *      the rest as a token, and the Bearer token when there is one;
 *   1  the rest is claims JSON, put behind {"alg":"EdDSA","kid":"ed"} and
 *      signed with the Ed25519 key, so the claims reader (reached only
 *      behind a valid signature) is fuzzed too;
 *   2  the same with {"alg":"ES256","kid":"es"} and the P-256 key;
 *   3  the rest is one JWK, its members kty, crv, alg, kid, x, y split by
 *      newlines: gw_keyset_from_jwks(), and a token verified with the set.
 * The keys are fixed (below), so seeds may hold fully valid tokens.
 *
 * libFuzzer: tools/fuzz.sh builds every target (with every source file of
 * gateway-rest and the decoders' sources); this one alone, from the
 * repository root:
 *   clang -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined \
 *     -D_POSIX_C_SOURCE=200809L -Irpc/include -Irpc/src -Igen -Itests/fuzz \
 *     -Iservices/common/include -Igateway-rest tests/fuzz/fuzz_gateway_jwt.c \
 *     gateway-rest/gw_auth.c gateway-rest/gw_jwks.c gateway-rest/gw_jwks_refresh.c \
 *     services/common/src/jwt.c services/common/src/base64.c services/common/src/log.c \
 *     services/common/src/ids.c rpc/src/rpc_status.c -lssl -lcrypto -lpthread \
 *     -o build-fuzz/fuzz_gateway_jwt
 *   build-fuzz/fuzz_gateway_jwt tests/fuzz/corpus/fuzz_gateway_jwt
 * Replay (any compiler): the same with -DFUZZ_STANDALONE instead of
 * -fsanitize=fuzzer, on the files of tests/fuzz/corpus/fuzz_gateway_jwt.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "fuzz_main.h"
#include "gw_auth.h"
#include "panthera/base64.h"
#include "panthera/log.h"

#define NOW 1700000000

/* Test keys, public by design: never used outside this harness. */
static const char ed_pem[] = "-----BEGIN PRIVATE KEY-----\n"
                             "MC4CAQAwBQYDK2VwBCIEIMn9p3oZGlFandVLxAHL23QCPQRiSbtEDbUVkLb+PSAG\n"
                             "-----END PRIVATE KEY-----\n";
static const char es_pem[] = "-----BEGIN PRIVATE KEY-----\n"
                             "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgPUuCVmhR6f/BH48Z\n"
                             "V//OrFRNSu1VUa55e+nUoSlmbiyhRANCAATVmP/S14CAPrUe/3xfk1E/SSIBKYs5\n"
                             "UAvrazGyEM8YF5426RdS58tvxTzbgVA1xSsR4t0GtkGFe8t7T80w5yhM\n"
                             "-----END PRIVATE KEY-----\n";

static EVP_PKEY *ed, *es;
static gw_auth *auth;
static char good_token[1024]; /* valid at NOW, signed by "ed" */

static EVP_PKEY *load(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	return k;
}

/* header.claims.signature into a new string; NULL when signing fails. */
static char *sign(const char *header, const char *claims, size_t cn, EVP_PKEY *key, int es256)
{
	size_t hn = strlen(header), o, len;
	size_t n = base64_encoded_len(hn, BASE64_URL) + base64_encoded_len(cn, BASE64_URL) +
	           base64_encoded_len(64, BASE64_URL) + 3;
	char *out = malloc(n);
	if (out == NULL)
		return NULL;
	if (base64_encode(header, hn, BASE64_URL, out, n, &o) != 0)
		goto fail;
	out[o++] = '.';
	if (base64_encode(claims, cn, BASE64_URL, out + o, n - o, &len) != 0)
		goto fail;
	o += len;
	uint8_t der[80], sig[64];
	size_t dn = sizeof(der), sn = sizeof(sig);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int ok =
	    md != NULL &&
	    EVP_DigestSignInit(md, NULL, es256 ? EVP_sha256() : NULL, NULL, key) == 1 &&
	    EVP_DigestSign(md, es256 ? der : sig, es256 ? &dn : &sn, (const uint8_t *)out, o) == 1;
	EVP_MD_CTX_free(md);
	if (ok && es256) { /* DER to r || s */
		const uint8_t *p = der;
		ECDSA_SIG *s = d2i_ECDSA_SIG(NULL, &p, (long)dn);
		ok = s != NULL && BN_bn2binpad(ECDSA_SIG_get0_r(s), sig, 32) == 32 &&
		     BN_bn2binpad(ECDSA_SIG_get0_s(s), sig + 32, 32) == 32;
		sn = 64;
		ECDSA_SIG_free(s);
	}
	if (!ok)
		goto fail;
	out[o++] = '.';
	if (base64_encode(sig, sn, BASE64_URL, out + o, n - o, NULL) != 0)
		goto fail;
	return out;
fail:
	free(out);
	return NULL;
}

/* The JWK members of a key: x (and y) in base64url. */
static int jwk_coords(EVP_PKEY *k, char x[44], char y[44])
{
	uint8_t b[65];
	size_t n = sizeof(b);
	y[0] = '\0';
	if (EVP_PKEY_get_id(k) == EVP_PKEY_ED25519) {
		if (EVP_PKEY_get_raw_public_key(k, b, &n) != 1 || n != 32)
			return -1;
		return base64_encode(b, 32, BASE64_URL, x, 44, NULL);
	}
	if (EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY, b, sizeof(b), &n) != 1 ||
	    n != 65)
		return -1;
	if (base64_encode(b + 1, 32, BASE64_URL, x, 44, NULL) != 0 ||
	    base64_encode(b + 33, 32, BASE64_URL, y, 44, NULL) != 0)
		return -1;
	return 0;
}

static int start(void)
{
	log_set_level(LOG_ERROR);
	ed = load(ed_pem);
	es = load(es_pem);
	char ex[44], ey[44], sx[44], sy[44];
	if (ed == NULL || es == NULL || jwk_coords(ed, ex, ey) != 0 || jwk_coords(es, sx, sy) != 0)
		return -1;
	/* Zeroed rather than _INIT: the members are all the key set reads, and
	 * the descriptors would need auth.pb-c.c linked into every target. */
	Panthera__Auth__V1__Jwk k[2];
	memset(k, 0, sizeof(k));
	k[0].kty = "OKP";
	k[0].crv = "Ed25519";
	k[0].alg = "EdDSA";
	k[0].kid = "ed";
	k[0].x = ex; /* no y */
	k[1].kty = "EC";
	k[1].crv = "P-256";
	k[1].alg = "ES256";
	k[1].kid = "es";
	k[1].x = sx;
	k[1].ec_coordinate_case = PANTHERA__AUTH__V1__JWK__EC_COORDINATE_Y;
	k[1].y = sy;
	Panthera__Auth__V1__Jwk *keys[2] = {&k[0], &k[1]};
	Panthera__Auth__V1__GetJwksResponse jwks;
	memset(&jwks, 0, sizeof(jwks));
	jwks.n_keys = 2;
	jwks.keys = keys;
	gw_keyset *ks = NULL;
	gw_auth_opts o = {.issuer = "panthera", .cache_entries = 256};
	if (gw_keyset_from_jwks(&jwks, &ks, NULL) != RPC_STATUS_OK || gw_keyset_count(ks) != 2 ||
	    gw_auth_create(&auth, &o) != RPC_STATUS_OK ||
	    gw_auth_install(auth, ks, NULL) != RPC_STATUS_OK)
		return -1;
	static const char claims[] =
	    "{\"iss\":\"panthera\",\"sub\":\"6f1c2a3e-0d4b-4c5a-9e8f-7a6b5c4d3e2f\","
	    "\"aud\":\"panthera\",\"iat\":1700000000,\"nbf\":1700000000,\"exp\":1700000900,"
	    "\"roles\":[\"USER\"],\"sid\":\"0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d\"}";
	char *t = sign("{\"alg\":\"EdDSA\",\"typ\":\"JWT\",\"kid\":\"ed\"}", claims,
	               sizeof(claims) - 1, ed, 0);
	if (t == NULL || strlen(t) >= sizeof(good_token)) {
		free(t);
		return -1;
	}
	strcpy(good_token, t);
	free(t);
	return 0;
}

/* Verify and use the result as the gateway would; verify again, which a
 * valid token answers from the cache: the same outcome. */
static void verify(gw_auth *a, const char *tok, size_t n)
{
	jwt_claims c, again;
	jwt_status why = JWT_OK, why2 = JWT_OK;
	rpc_status st = gw_auth_verify(a, tok, n, NOW, &c, &why);
	if (gw_auth_verify(a, tok, n, NOW, &again, &why2) != st || why2 != why ||
	    (st == RPC_STATUS_OK && memcmp(&c, &again, sizeof(c)) != 0))
		abort();
	if (st == RPC_STATUS_OK) {
		rpc_metadata_entry md[GW_CALLER_MD_MAX];
		size_t m = gw_auth_caller_metadata(&c, md);
		if (m < 1 || m > GW_CALLER_MD_MAX || strlen(md[0].value) != 36)
			abort(); /* a verified token always has a UUID subject */
	} else if (strlen(gw_auth_www_authenticate(1, why)) == 0 ||
	           jwt_status_text(why)[0] == '?') {
		abort();
	}
}

/* Mode 3: one JWK from newline-separated members. */
static void jwk(const char *s, size_t n)
{
	char *copy = malloc(n + 1);
	if (copy == NULL)
		return;
	memcpy(copy, s, n);
	copy[n] = '\0';
	char *f[6] = {"", "", "", "", "", ""};
	char *p = copy;
	for (int i = 0; i < 6 && p != NULL; i++) {
		f[i] = p;
		p = strchr(p, '\n');
		if (p != NULL)
			*p++ = '\0';
	}
	Panthera__Auth__V1__Jwk k;
	memset(&k, 0, sizeof(k));
	k.kty = f[0];
	k.crv = f[1];
	k.alg = f[2];
	k.kid = f[3];
	k.x = f[4];
	k.y = f[5];
	Panthera__Auth__V1__Jwk *keys[1] = {&k};
	Panthera__Auth__V1__GetJwksResponse jwks;
	memset(&jwks, 0, sizeof(jwks));
	jwks.n_keys = 1;
	jwks.keys = keys;
	gw_keyset *ks = NULL;
	size_t refused = 0;
	if (gw_keyset_from_jwks(&jwks, &ks, &refused) == RPC_STATUS_OK) {
		if (gw_keyset_count(ks) + refused != 1)
			abort();
		jwt_key key;
		if (gw_keyset_count(ks) == 1 && gw_keyset_find(ks, k.kid, &key) != 0)
			abort(); /* an accepted key is found by its kid */
		/* a verifier of this one key, without cache effects across runs */
		gw_auth *a = NULL;
		gw_auth_opts o = {.issuer = "panthera", .cache_entries = 64};
		if (gw_auth_create(&a, &o) == RPC_STATUS_OK &&
		    gw_auth_install(a, gw_keyset_ref(ks), NULL) == RPC_STATUS_OK)
			verify(a, good_token, strlen(good_token));
		gw_auth_destroy(a);
	}
	gw_keyset_release(ks);
	free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (auth == NULL && start() != 0)
		abort(); /* the harness itself is broken */
	if (size == 0 || size > 64 * 1024)
		return 0;
	const char *s = (const char *)data + 1;
	size_t n = size - 1;
	switch (data[0] % 4) {
	case 0: {
		verify(auth, s, n);
		const char *tok;
		size_t tn;
		if (gw_auth_bearer(s, n, &tok, &tn) == 1)
			verify(auth, tok, tn);
		break;
	}
	case 1:
	case 2: {
		int es256 = data[0] % 4 == 2;
		char *t = sign(es256 ? "{\"alg\":\"ES256\",\"typ\":\"JWT\",\"kid\":\"es\"}"
		                     : "{\"alg\":\"EdDSA\",\"typ\":\"JWT\",\"kid\":\"ed\"}",
		               s, n, es256 ? es : ed, es256);
		if (t != NULL)
			verify(auth, t, strlen(t));
		free(t);
		break;
	}
	default:
		jwk(s, n);
	}
	return 0;
}
