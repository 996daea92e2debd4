/*
 * auth_jwt.h - the auth service's signing keys and access tokens (internal).
 *
 * Keys: Ed25519, one PEM file (PKCS#8, mode 0600) per key in
 * <data_dir>/keys/<kid>.pem, where kid is the first 16 hex digits of the
 * SHA-256 of the raw 32-byte public key (computed from the key, never taken
 * from the file name). The first start generates one; later starts load
 * every *.pem there. The newest file (modification time) signs; every
 * loaded key verifies and is published in the JWKS, newest first. Rotation:
 * auth_keyring_rotate() (or a new key file and a restart); a retired key is
 * removed by deleting its file once the tokens it signed have expired
 * (access_ttl_s after the rotation). A lock file (keys/.lock, fcntl) keeps
 * two processes starting on one data_dir from generating two keys at once.
 *
 * Tokens: compact JWS (RFC 7515), base64url without padding, header
 * {"alg":"EdDSA","typ":"JWT","kid":...}, claims {iss, sub, aud, iat, nbf,
 * exp, roles, sid}. auth_jwt_verify() reads token text only through the
 * shared verifier of panthera/jwt.h (bounded parsing: 8 KiB a token, 16
 * levels of JSON nesting, 255 bytes a string), with the ring as its key
 * lookup: every ring key is Ed25519, so only EdDSA verifies here. The REST
 * gateway runs the same verifier against the JWKS of GetJwks.
 *
 * Thread-safety: a keyring is shared by the RPC worker threads; rotation
 * takes its write lock, signing and verifying the read lock.
 */
#ifndef PANTHERA_AUTH_JWT_H
#define PANTHERA_AUTH_JWT_H

#include <stddef.h>
#include <stdint.h>

#include "panthera/jwt.h"
#include "panthera/rpc_status.h"

typedef struct auth_keyring auth_keyring;

#define AUTH_KID_LEN      16          /* hex digits */
#define AUTH_JWK_X_LEN    43          /* base64url of a 32-byte Ed25519 public key */
#define AUTH_JWT_MAX      JWT_MAX_LEN /* longest token text accepted */
#define AUTH_JWT_AUD      JWT_AUD
#define AUTH_JWT_LEEWAY_S JWT_LEEWAY_S /* clock skew allowed on exp and nbf */
#define AUTH_MAX_KEYS     16

/* Role bits of a token's `roles` claim. */
enum { AUTH_ROLE_USER = JWT_ROLE_USER, AUTH_ROLE_ADMIN = JWT_ROLE_ADMIN };

/* {sub, sid, iat, nbf, exp, roles}: the claims of panthera/jwt.h. */
typedef jwt_claims auth_claims;

/*
 * Load every key of <data_dir>/keys (creating the folders, 0700, and a
 * first key when there is none). On error *out is NULL: INVALID_ARGUMENT
 * for a NULL or unusable data_dir, INTERNAL when a folder or file cannot be
 * written or OpenSSL fails (the reason goes to the log),
 * RESOURCE_EXHAUSTED without memory. Files that do not hold an Ed25519
 * private key are skipped with a warning.
 */
rpc_status auth_keyring_load(auth_keyring **out, const char *data_dir);

/* Free the ring and its keys. NULL is harmless. */
void auth_keyring_free(auth_keyring *kr);

/*
 * Generate a new key in the ring's folder and make it the signing key; the
 * others keep verifying. On success kid_out (may be NULL) gets its kid
 * (AUTH_KID_LEN + 1 bytes). RESOURCE_EXHAUSTED past AUTH_MAX_KEYS.
 */
rpc_status auth_keyring_rotate(auth_keyring *kr, char *kid_out);

/*
 * The public keys, newest (the signer) first: calls fn once per key with its
 * kid and its raw public key in base64url (43 characters), under the read
 * lock (fn must not call back into the ring). Stops at the first status
 * that is not OK and returns it.
 */
typedef rpc_status (*auth_jwk_fn)(const char *kid, const char *x, void *arg);
rpc_status auth_keyring_each(auth_keyring *kr, auth_jwk_fn fn, void *arg);

/* 1 when `s` may be an issuer: 1..255 printable ASCII characters
 * without '"' or '\\' (it is written into the claims as is). */
int auth_jwt_issuer_ok(const char *s);

/*
 * Sign `c` with the newest key: a token of at most AUTH_JWT_MAX bytes in
 * out[0..cap) (cap >= 1024 is enough). `issuer` is printable ASCII without
 * '"' or '\\' (checked: INVALID_ARGUMENT). INTERNAL when OpenSSL fails,
 * RESOURCE_EXHAUSTED when cap is too small.
 */
rpc_status auth_jwt_sign(auth_keyring *kr, const char *issuer, const auth_claims *c, char *out,
                         size_t cap);

/*
 * Verify `token` (NUL-terminated) at time `now` (Unix seconds) with
 * jwt_verify() of panthera/jwt.h, the ring's keys as its lookup (under the
 * read lock): compact form, no "crit", header alg "EdDSA" (any other,
 * "none" included, is refused) with the kid of a key of the ring, a valid
 * signature, then iss == issuer, aud == AUTH_JWT_AUD (or an array holding
 * it), nbf and exp around now within AUTH_JWT_LEEWAY_S, sub and sid UUIDs,
 * roles known names. OK fills *out; UNAUTHENTICATED otherwise, with the
 * static text of the failed check (jwt_status_text) in *why (may be NULL;
 * NULL on OK) for the log: never the token.
 */
rpc_status auth_jwt_verify(auth_keyring *kr, const char *issuer, const char *token, int64_t now,
                           auth_claims *out, const char **why);

#endif /* PANTHERA_AUTH_JWT_H */
