/*
 * jwt.h - the one verifier of Panthera's access tokens, shared by the auth
 * service (its own keyring) and the REST gateway (the auth service's JWKS).
 *
 * A token is a compact JWS (RFC 7515): three base64url parts without
 * padding, header.claims.signature. The header is
 * {"alg":"EdDSA"|"ES256","typ":"JWT","kid":...}; the claims are
 * {iss, sub, aud, iat, nbf, exp, roles, sid}. jwt_verify() is the only code
 * that reads token text. It parses with explicit bounds (JWT_MAX_LEN bytes
 * a token, 16 levels of JSON nesting, 255 bytes a string, 64 array
 * elements), and checks, in this order:
 *   - the form: three non-empty base64url parts (the signature may be
 *     empty only to be refused), canonical base64url, JSON objects whose
 *     known members appear once;
 *   - the header: no "crit" (no extension is understood), "alg" EdDSA or
 *     ES256 ("none", HS256 and everything else refused before any key is
 *     looked at), "typ" JWT when present, a "kid";
 *   - the key: found by kid through the caller's lookup function (the
 *     keyring of auth, the JWKS key set of the gateway). The algorithm comes
 *     from the KEY: a header alg other than the key's is refused, so an
 *     Ed25519 key never verifies an ES256 token nor the reverse, and no
 *     public key is ever used as an HMAC secret;
 *   - the signature (Ed25519, or ECDSA P-256 with SHA-256 as the 64 bytes
 *     r || s of RFC 7518 §3.4), by OpenSSL;
 *   - then only the claims: iss == the expected issuer, aud == JWT_AUD (or
 *     an array holding it), exp and nbf around `now` within JWT_LEEWAY_S,
 *     sub and sid UUIDs, roles the known names USER and ADMIN.
 *
 * The outcome is a jwt_status: JWT_OK, or the first check that failed
 * (JWT_ERR_UNKNOWN_KID lets a caller refetch its keys). Nothing here
 * allocates but OpenSSL's verification contexts, logs, or keeps state:
 * every function is thread-safe as long as the keys the lookup hands out
 * stay valid until jwt_verify() returns.
 *
 * Token parts, and the key coordinates of JWKs, are base64url without
 * padding, canonical: panthera/base64.h with BASE64_URL |
 * BASE64_CANONICAL.
 */
#ifndef PANTHERA_JWT_H
#define PANTHERA_JWT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/types.h>

#define JWT_MAX_LEN  8192       /* longest token text accepted, in bytes */
#define JWT_AUD      "panthera" /* the audience of every access token */
#define JWT_LEEWAY_S 30         /* clock skew allowed on exp and nbf, seconds */
#define JWT_KID_MAX  64         /* a kid is 1..JWT_KID_MAX - 1 bytes */

/* The signature algorithms accepted ("alg" of a header and of a JWK). */
typedef enum jwt_alg {
	JWT_ALG_EDDSA = 1, /* Ed25519 (RFC 8037) */
	JWT_ALG_ES256 = 2, /* ECDSA on P-256 with SHA-256 (RFC 7518 §3.4) */
} jwt_alg;

/* "EdDSA", "ES256"; "?" for anything else. */
const char *jwt_alg_name(jwt_alg alg);

/* Role bits of the `roles` claim. */
enum { JWT_ROLE_USER = 1u << 0, JWT_ROLE_ADMIN = 1u << 1 };

/* What a valid token says. */
typedef struct jwt_claims {
	char sub[37]; /* user id (UUID) */
	char sid[37]; /* session family id (UUID) */
	int64_t iat, nbf, exp;
	unsigned roles; /* JWT_ROLE_* bits */
} jwt_claims;

/*
 * The outcome of jwt_verify(): X(name, text for logs). The texts are
 * static, never quote the token, and may be logged.
 */
#define JWT_STATUS_MAP(X)                                 \
	X(OK, "valid")                                    \
	X(ERR_NO_TOKEN, "no token")                       \
	X(ERR_TOO_LONG, "token too long")                 \
	X(ERR_FORM, "not a compact JWS")                  \
	X(ERR_HEADER, "bad header")                       \
	X(ERR_CRIT, "header has crit")                    \
	X(ERR_ALG, "algorithm not accepted")              \
	X(ERR_TYP, "typ not JWT")                         \
	X(ERR_NO_KID, "no kid")                           \
	X(ERR_SIG_ENCODING, "bad signature encoding")     \
	X(ERR_UNKNOWN_KID, "unknown kid")                 \
	X(ERR_ALG_MISMATCH, "algorithm is not the key's") \
	X(ERR_SIGNATURE, "bad signature")                 \
	X(ERR_CLAIMS, "bad claims")                       \
	X(ERR_MISSING_CLAIM, "missing claim")             \
	X(ERR_ISSUER, "wrong issuer")                     \
	X(ERR_AUDIENCE, "wrong audience")                 \
	X(ERR_EXPIRED, "expired")                         \
	X(ERR_NOT_YET_VALID, "not yet valid")             \
	X(ERR_SUBJECT, "sub or sid not a UUID")           \
	X(ERR_INTERNAL, "verification failed (out of memory or OpenSSL)")

typedef enum jwt_status {
#define JWT_STATUS_ENUM_(name, text) JWT_##name,
	JWT_STATUS_MAP(JWT_STATUS_ENUM_)
#undef JWT_STATUS_ENUM_
	    JWT_STATUS_COUNT
} jwt_status;

/* The text of a status ("expired"); "?" outside the enum. Static. */
const char *jwt_status_text(jwt_status st);

/*
 * A verification key, as a lookup hands it out: the public key (Ed25519
 * for JWT_ALG_EDDSA, EC P-256 for JWT_ALG_ES256) and the one algorithm it
 * verifies. Borrowed: the lookup's owner keeps it alive until jwt_verify()
 * returns.
 */
typedef struct jwt_key {
	EVP_PKEY *pkey;
	jwt_alg alg;
} jwt_key;

/*
 * Find the key of `kid` (NUL-terminated, 1..JWT_KID_MAX - 1 bytes, any
 * bytes but NUL: compare it as given). Return 0 with *out filled, or -1
 * when there is no such key. Called at most once per jwt_verify(), on its
 * thread.
 */
typedef int (*jwt_key_lookup_fn)(void *arg, const char *kid, jwt_key *out);

/*
 * Verify token[0..len) at time `now` (Unix seconds) against the keys of
 * `lookup`, expecting `issuer` (NUL-terminated). JWT_OK fills *out (which
 * is left untouched otherwise); any other status says which check failed
 * (see the list atop this file). JWT_ERR_INTERNAL is not the token's
 * fault: OpenSSL could not allocate. A NULL token or issuer is
 * JWT_ERR_NO_TOKEN. `token` need not be NUL-terminated; a token with a NUL
 * byte inside is malformed.
 */
jwt_status jwt_verify(const char *token, size_t len, const char *issuer, int64_t now,
                      jwt_key_lookup_fn lookup, void *arg, jwt_claims *out);

#endif /* PANTHERA_JWT_H */
