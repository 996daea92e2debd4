/*
 * auth_crypto.h - the auth service's secrets (internal): opaque tokens, and
 * password hashing with scrypt, all through OpenSSL (base64 is
 * panthera/base64.h's).
 *
 * Passwords are stored as one self-describing string,
 *   $scrypt$ln=15,r=8,p=1$<salt>$<hash>
 * (PHC string format: standard base64 without padding; a 16-byte salt from
 * RAND_bytes, a 32-byte derived key), so the cost can be raised later:
 * auth_pw_verify() reads the parameters from the string and says when they
 * differ from the current ones, and the login then stores a new hash.
 *
 * Opaque tokens (refresh, password reset) are 32 bytes from RAND_bytes in
 * base64url without padding (43 characters); only the SHA-256 of that text
 * is stored.
 *
 * Every function is thread-safe; buffers holding secrets are wiped with
 * OPENSSL_cleanse before they are left.
 */
#ifndef PANTHERA_AUTH_CRYPTO_H
#define PANTHERA_AUTH_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "panthera/rpc_status.h"

/* ---- opaque tokens ---- */

#define AUTH_TOKEN_BYTES 32
#define AUTH_TOKEN_LEN   43 /* base64url of 32 bytes, unpadded */
#define AUTH_SHA256_LEN  32
/* bytea in PostgreSQL's hex text form: "\x" and two digits a byte */
#define AUTH_BYTEA_HEX_LEN (2 + 2 * AUTH_SHA256_LEN)

/*
 * A new random token in token[AUTH_TOKEN_LEN + 1] and the SHA-256 of its
 * text, as a bytea parameter, in hash_hex[AUTH_BYTEA_HEX_LEN + 1]. INTERNAL
 * when the generator fails (both then ""). The caller wipes `token` after use.
 */
rpc_status auth_token_new(char token[AUTH_TOKEN_LEN + 1], char hash_hex[AUTH_BYTEA_HEX_LEN + 1]);

/*
 * The SHA-256 of a presented token, as a bytea parameter. INVALID_ARGUMENT
 * (hash_hex "") when `token` is not 43 base64url characters: such text was
 * never issued, and is refused before it reaches SQL.
 */
rpc_status auth_token_hash(const char *token, char hash_hex[AUTH_BYTEA_HEX_LEN + 1]);

/* ---- passwords ---- */

typedef struct auth_pw_params {
	unsigned log_n; /* N = 2^log_n: CPU and memory cost (128 * r * N bytes) */
	unsigned r;     /* block size */
	unsigned p;     /* parallelism */
} auth_pw_params;

/* The production cost: N = 2^15, r = 8, p = 1 (32 MiB, ~0.1 s a hash). */
#define AUTH_PW_LOG_N 15u
#define AUTH_PW_R     8u
#define AUTH_PW_P     1u

/* Bounds accepted in a stored string (and for the parameters given), so a
 * damaged row cannot make a login allocate without limit: each parameter,
 * and the memory 128 * r * N at most 256 MiB (so ln <= 18 with r = 8). */
#define AUTH_PW_MAX_LOG_N 20u
#define AUTH_PW_MAX_R     32u
#define AUTH_PW_MAX_P     16u
#define AUTH_PW_MAX_MEM   (256u << 20)

/* Room for any string auth_pw_hash() writes, NUL included. */
#define AUTH_PW_HASH_MAX 160

/*
 * Hash `password` (its bytes as given) with a fresh salt into out[0..cap),
 * cap >= AUTH_PW_HASH_MAX. INVALID_ARGUMENT for parameters out of bounds,
 * RESOURCE_EXHAUSTED when scrypt cannot get its memory, INTERNAL when the
 * random generator fails; out is then "".
 */
rpc_status auth_pw_hash(const char *password, const auth_pw_params *pp, char *out, size_t cap);

/*
 * Check `password` against `stored` in constant time (CRYPTO_memcmp). On OK,
 * *match is 1 or 0, and *outdated (may be NULL) is 1 when the string's
 * parameters differ from `current` (the caller may store a new hash).
 * INVALID_ARGUMENT for a string that is not one auth_pw_hash() would write
 * (*match 0); RESOURCE_EXHAUSTED as above.
 */
rpc_status auth_pw_verify(const char *password, const char *stored, const auth_pw_params *current,
                          int *match, int *outdated);

#endif /* PANTHERA_AUTH_CRYPTO_H */
