/*
 * gw_jwks.c - key sets: the public keys of a JWKS (GetJwksResponse) as
 * OpenSSL keys, each with the one algorithm it verifies; see gw_auth.h.
 *
 * A set is built once per fetch, sorted by kid so a lookup is a binary
 * search, and never changed after: readers share it through a reference
 * count instead of a lock. Keys are checked one by one; a bad key is
 * logged and left out, so one key auth cannot describe well does not cost
 * the gateway the others.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "gw_auth.h"
#include "panthera/base64.h"
#include "panthera/log.h"

#define COORD_LEN 32 /* an Ed25519 public key, a P-256 coordinate */

typedef struct gw_key {
	char kid[JWT_KID_MAX];
	jwt_alg alg;
	EVP_PKEY *pkey;
	uint8_t pub[2 * COORD_LEN]; /* x, or x || y: compared by gw_keyset_equal */
	size_t pub_len;
} gw_key;

struct gw_keyset {
	atomic_size_t refs;
	size_t n;
	gw_key keys[]; /* sorted by kid, each kid once */
};

static const char *str(const char *s)
{
	return s != NULL ? s : "";
}

/* A base64url coordinate (unpadded, canonical) of exactly COORD_LEN bytes
 * into out. */
static int coord(const char *b64, uint8_t out[COORD_LEN])
{
	size_t n = strlen(b64), got;
	if (n != base64_encoded_len(COORD_LEN, BASE64_URL) ||
	    base64_decode(b64, n, BASE64_URL | BASE64_CANONICAL, out, COORD_LEN, &got) != 0)
		return -1;
	return got == COORD_LEN ? 0 : -1;
}

/* The EC P-256 public key of the uncompressed point 04 || x || y, checked
 * to lie on the curve; NULL when it does not, or OpenSSL fails. */
static EVP_PKEY *p256_key(const uint8_t xy[2 * COORD_LEN], int *oom)
{
	uint8_t point[1 + 2 * COORD_LEN];
	point[0] = 0x04;
	memcpy(point + 1, xy, 2 * COORD_LEN);
	char group[] = "P-256";
	OSSL_PARAM params[] = {
	    OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
	    OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point)),
	    OSSL_PARAM_construct_end(),
	};
	EVP_PKEY *pkey = NULL;
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	if (ctx == NULL) {
		*oom = 1;
		return NULL;
	}
	if (EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
		pkey = NULL; /* not a point of the curve, or no memory: refused */
	EVP_PKEY_CTX_free(ctx);
	if (pkey == NULL)
		return NULL;
	/* fromdata decodes the point; the full public-key check says it is on
	 * the curve and not the point at infinity. */
	EVP_PKEY_CTX *check = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
	int ok = check != NULL && EVP_PKEY_public_check(check) == 1;
	if (check == NULL)
		*oom = 1;
	EVP_PKEY_CTX_free(check);
	if (!ok) {
		EVP_PKEY_free(pkey);
		return NULL;
	}
	return pkey;
}

/*
 * One JWK into *k: NULL when it is accepted, else why not. *oom is set when
 * the refusal is OpenSSL or memory failing rather than the key.
 */
static const char *parse_jwk(const Panthera__Auth__V1__Jwk *j, gw_key *k, int *oom)
{
	const char *kid = str(j->kid), *kty = str(j->kty), *use = str(j->use);
	const char *alg = str(j->alg), *crv = str(j->crv), *x = str(j->x);
	const char *y =
	    j->ec_coordinate_case == PANTHERA__AUTH__V1__JWK__EC_COORDINATE_Y ? str(j->y) : "";
	size_t kid_len = strlen(kid);
	if (kid_len == 0 || kid_len >= sizeof(k->kid))
		return "kid empty or longer than 63 bytes";
	memcpy(k->kid, kid, kid_len + 1);
	if (use[0] != '\0' && strcmp(use, "sig") != 0)
		return "use is not sig";
	if (strcmp(kty, "OKP") == 0) {
		if (strcmp(crv, "Ed25519") != 0)
			return "OKP key of a curve other than Ed25519";
		if (strcmp(alg, "EdDSA") != 0)
			return "Ed25519 key whose alg is not EdDSA";
		if (y[0] != '\0' || coord(x, k->pub) != 0)
			return "Ed25519 key whose x is not 32 bytes of base64url (or with a y)";
		k->pub_len = COORD_LEN;
		k->alg = JWT_ALG_EDDSA;
		k->pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, k->pub, COORD_LEN);
		return k->pkey != NULL ? NULL : "OpenSSL refused the Ed25519 key";
	}
	if (strcmp(kty, "EC") == 0) {
		if (strcmp(crv, "P-256") != 0)
			return "EC key of a curve other than P-256";
		if (strcmp(alg, "ES256") != 0)
			return "P-256 key whose alg is not ES256";
		if (coord(x, k->pub) != 0 || coord(y, k->pub + COORD_LEN) != 0)
			return "P-256 key whose x or y is not 32 bytes of base64url";
		k->pub_len = 2 * COORD_LEN;
		k->alg = JWT_ALG_ES256;
		if ((k->pkey = p256_key(k->pub, oom)) == NULL)
			return "P-256 key that is not a point of the curve";
		return NULL;
	}
	return "key type is neither OKP nor EC";
}

static int by_kid(const void *a, const void *b)
{
	return strcmp(((const gw_key *)a)->kid, ((const gw_key *)b)->kid);
}

static int same_key(const gw_key *a, const gw_key *b)
{
	return strcmp(a->kid, b->kid) == 0 && a->alg == b->alg && a->pub_len == b->pub_len &&
	       memcmp(a->pub, b->pub, a->pub_len) == 0;
}

static void refuse(const char *kid, const char *why)
{
	log_write(LOG_WARN, NULL, "gateway.jwks", "JWKS key \"%.63s\" refused: %s", kid, why);
}

rpc_status gw_keyset_from_jwks(const Panthera__Auth__V1__GetJwksResponse *jwks, gw_keyset **out,
                               size_t *n_refused)
{
	if (out != NULL)
		*out = NULL;
	if (n_refused != NULL)
		*n_refused = 0;
	if (jwks == NULL || out == NULL || (jwks->n_keys > 0 && jwks->keys == NULL))
		return RPC_STATUS_INVALID_ARGUMENT;
	size_t take = jwks->n_keys < GW_JWKS_MAX_KEYS ? jwks->n_keys : GW_JWKS_MAX_KEYS;
	size_t refused = jwks->n_keys - take;
	if (refused > 0)
		log_write(LOG_WARN, NULL, "gateway.jwks",
		          "JWKS has %zu keys: the %zu past the first %d are refused", jwks->n_keys,
		          refused, GW_JWKS_MAX_KEYS);
	gw_keyset *ks = calloc(1, sizeof(*ks) + take * sizeof(ks->keys[0]));
	if (ks == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	atomic_init(&ks->refs, 1);
	int oom = 0;
	for (size_t i = 0; i < take && !oom; i++) {
		gw_key *k = &ks->keys[ks->n];
		memset(k, 0, sizeof(*k));
		const char *why =
		    jwks->keys[i] != NULL ? parse_jwk(jwks->keys[i], k, &oom) : "missing key";
		if (why == NULL) {
			ks->n++;
			continue;
		}
		EVP_PKEY_free(k->pkey);
		k->pkey = NULL;
		if (!oom) {
			refuse(jwks->keys[i] != NULL ? str(jwks->keys[i]->kid) : "", why);
			refused++;
		}
	}
	if (oom) {
		gw_keyset_release(ks);
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	}
	qsort(ks->keys, ks->n, sizeof(ks->keys[0]), by_kid);
	/* A kid given twice: the same key twice is kept once; two different
	 * keys under one kid cannot both be right, so neither is kept. */
	size_t o = 0;
	for (size_t i = 0; i < ks->n;) {
		size_t j = i + 1;
		int differ = 0;
		for (; j < ks->n && strcmp(ks->keys[j].kid, ks->keys[i].kid) == 0; j++)
			differ |= !same_key(&ks->keys[i], &ks->keys[j]);
		if (differ) {
			refuse(ks->keys[i].kid, "kid given to different keys");
			refused += j - i;
		}
		for (size_t m = i; m < j; m++) {
			if (m == i && !differ)
				ks->keys[o++] = ks->keys[m];
			else
				EVP_PKEY_free(ks->keys[m].pkey);
		}
		i = j;
	}
	ks->n = o;
	if (n_refused != NULL)
		*n_refused = refused;
	*out = ks;
	return RPC_STATUS_OK;
}

size_t gw_keyset_count(const gw_keyset *ks)
{
	return ks != NULL ? ks->n : 0;
}

int gw_keyset_find(const gw_keyset *ks, const char *kid, jwt_key *out)
{
	if (ks == NULL || kid == NULL)
		return -1;
	size_t lo = 0, hi = ks->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(kid, ks->keys[mid].kid);
		if (c == 0) {
			out->pkey = ks->keys[mid].pkey;
			out->alg = ks->keys[mid].alg;
			return 0;
		}
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return -1;
}

int gw_keyset_equal(const gw_keyset *a, const gw_keyset *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	if (a->n != b->n)
		return 0;
	for (size_t i = 0; i < a->n; i++) { /* both sorted by kid */
		if (!same_key(&a->keys[i], &b->keys[i]))
			return 0;
	}
	return 1;
}

gw_keyset *gw_keyset_ref(gw_keyset *ks)
{
	if (ks != NULL)
		atomic_fetch_add_explicit(&ks->refs, 1, memory_order_relaxed);
	return ks;
}

void gw_keyset_release(gw_keyset *ks)
{
	if (ks == NULL || atomic_fetch_sub_explicit(&ks->refs, 1, memory_order_acq_rel) != 1)
		return;
	for (size_t i = 0; i < ks->n; i++)
		EVP_PKEY_free(ks->keys[i].pkey);
	free(ks);
}
