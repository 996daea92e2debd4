/*
 * crypto.c - opaque tokens and scrypt password strings; see auth_crypto.h.
 * OpenSSL does the cryptography (RAND_bytes, SHA-256, EVP_PBE_scrypt,
 * CRYPTO_memcmp, OPENSSL_cleanse); this file only frames it, in the base64
 * forms of panthera/base64.h.
 */
#include "auth_crypto.h"

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "panthera/base64.h"

#define PW_SALT_BYTES 16
#define PW_KEY_BYTES  32
/* Salts and keys read back from a stored string may be 8..64 bytes. */
#define PW_MIN_BYTES 8
#define PW_MAX_BYTES 64

/* Password strings: standard base64 (PHC), canonical when read back;
 * opaque tokens: base64url. Both unpadded. */
#define PW_B64    (BASE64_STD | BASE64_CANONICAL)
#define TOKEN_B64 BASE64_URL

/* ---- tokens ---- */

static void bytea_hex(const uint8_t *h, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";
	out[0] = '\\';
	out[1] = 'x';
	for (size_t i = 0; i < n; i++) {
		out[2 + 2 * i] = hex[h[i] >> 4];
		out[3 + 2 * i] = hex[h[i] & 15];
	}
	out[2 + 2 * n] = '\0';
}

static void sha256_hex(const char *text, size_t len, char hash_hex[AUTH_BYTEA_HEX_LEN + 1])
{
	uint8_t h[AUTH_SHA256_LEN];
	SHA256((const unsigned char *)text, len, h);
	bytea_hex(h, sizeof(h), hash_hex);
	OPENSSL_cleanse(h, sizeof(h));
}

rpc_status auth_token_new(char token[AUTH_TOKEN_LEN + 1], char hash_hex[AUTH_BYTEA_HEX_LEN + 1])
{
	uint8_t raw[AUTH_TOKEN_BYTES];
	token[0] = hash_hex[0] = '\0';
	rpc_status st = RPC_STATUS_INTERNAL;
	if (RAND_bytes(raw, sizeof(raw)) == 1 &&
	    base64_encode(raw, sizeof(raw), TOKEN_B64, token, AUTH_TOKEN_LEN + 1, NULL) == 0) {
		sha256_hex(token, AUTH_TOKEN_LEN, hash_hex);
		st = RPC_STATUS_OK;
	}
	OPENSSL_cleanse(raw, sizeof(raw));
	return st;
}

rpc_status auth_token_hash(const char *token, char hash_hex[AUTH_BYTEA_HEX_LEN + 1])
{
	hash_hex[0] = '\0';
	if (token == NULL)
		return RPC_STATUS_INVALID_ARGUMENT;
	size_t n = strnlen(token, AUTH_TOKEN_LEN + 1);
	if (n != AUTH_TOKEN_LEN)
		return RPC_STATUS_INVALID_ARGUMENT;
	/* 43 characters of the base64url alphabet: decoding checks that (not
	 * the trailing bits: a token is looked up by its text's hash); the
	 * bytes themselves are not needed. */
	uint8_t raw[AUTH_TOKEN_BYTES];
	size_t raw_len;
	int bad = base64_decode(token, n, TOKEN_B64, raw, sizeof(raw), &raw_len) != 0;
	OPENSSL_cleanse(raw, sizeof(raw));
	if (bad)
		return RPC_STATUS_INVALID_ARGUMENT;
	sha256_hex(token, n, hash_hex);
	return RPC_STATUS_OK;
}

/* ---- passwords ---- */

static int params_ok(const auth_pw_params *pp)
{
	return pp->log_n >= 1 && pp->log_n <= AUTH_PW_MAX_LOG_N && pp->r >= 1 &&
	       pp->r <= AUTH_PW_MAX_R && pp->p >= 1 && pp->p <= AUTH_PW_MAX_P &&
	       ((uint64_t)128 * pp->r << pp->log_n) <= AUTH_PW_MAX_MEM;
}

/* scrypt through OpenSSL, with the memory ceiling the parameters need
 * (OpenSSL's default of 32 MiB is exactly N = 2^15, r = 8 without the
 * p blocks, so it must be given). */
static rpc_status derive(const char *password, const uint8_t *salt, size_t salt_len,
                         const auth_pw_params *pp, uint8_t *key, size_t key_len)
{
	uint64_t n = (uint64_t)1 << pp->log_n;
	uint64_t maxmem =
	    128u * (uint64_t)pp->r * (n + 2) + 128u * (uint64_t)pp->r * pp->p + (1u << 20);
	if (EVP_PBE_scrypt(password, strlen(password), salt, salt_len, n, pp->r, pp->p, maxmem, key,
	                   key_len) != 1)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	return RPC_STATUS_OK;
}

rpc_status auth_pw_hash(const char *password, const auth_pw_params *pp, char *out, size_t cap)
{
	if (cap > 0)
		out[0] = '\0';
	if (password == NULL || !params_ok(pp) || cap < AUTH_PW_HASH_MAX)
		return RPC_STATUS_INVALID_ARGUMENT;
	uint8_t salt[PW_SALT_BYTES], key[PW_KEY_BYTES];
	if (RAND_bytes(salt, sizeof(salt)) != 1)
		return RPC_STATUS_INTERNAL;
	rpc_status st = derive(password, salt, sizeof(salt), pp, key, sizeof(key));
	if (st == RPC_STATUS_OK) {
		char s64[PW_MAX_BYTES * 2], k64[PW_MAX_BYTES * 2];
		if (base64_encode(salt, sizeof(salt), PW_B64, s64, sizeof(s64), NULL) == 0 &&
		    base64_encode(key, sizeof(key), PW_B64, k64, sizeof(k64), NULL) == 0)
			snprintf(out, cap, "$scrypt$ln=%u,r=%u,p=%u$%s$%s", pp->log_n, pp->r, pp->p,
			         s64, k64);
		else
			st = RPC_STATUS_INTERNAL;
		OPENSSL_cleanse(k64, sizeof(k64));
	}
	OPENSSL_cleanse(key, sizeof(key));
	return st;
}

/* Read "<digits>" at *s (1..3 digits, no leading zero) into *v. */
static int read_uint(const char **s, unsigned *v)
{
	const char *p = *s;
	unsigned x = 0;
	int n = 0;
	while (*p >= '0' && *p <= '9' && n < 4) {
		x = x * 10 + (unsigned)(*p - '0');
		p++;
		n++;
	}
	if (n == 0 || n > 3 || (n > 1 && **s == '0'))
		return -1;
	*v = x;
	*s = p;
	return 0;
}

static int expect(const char **s, const char *lit)
{
	size_t n = strlen(lit);
	if (strncmp(*s, lit, n) != 0)
		return -1;
	*s += n;
	return 0;
}

/* Parse a stored string into its parameters, salt and key. */
static int parse_stored(const char *stored, auth_pw_params *pp, uint8_t *salt, size_t *salt_len,
                        uint8_t *key, size_t *key_len)
{
	const char *s = stored;
	if (expect(&s, "$scrypt$ln=") || read_uint(&s, &pp->log_n) || expect(&s, ",r=") ||
	    read_uint(&s, &pp->r) || expect(&s, ",p=") || read_uint(&s, &pp->p) || expect(&s, "$"))
		return -1;
	if (!params_ok(pp))
		return -1;
	const char *dollar = strchr(s, '$');
	if (dollar == NULL)
		return -1;
	size_t klen = strnlen(dollar + 1, PW_MAX_BYTES * 2);
	if (base64_decode(s, (size_t)(dollar - s), PW_B64, salt, PW_MAX_BYTES, salt_len) != 0 ||
	    base64_decode(dollar + 1, klen, PW_B64, key, PW_MAX_BYTES, key_len) != 0 ||
	    dollar[1 + klen] != '\0')
		return -1;
	if (*salt_len < PW_MIN_BYTES || *key_len < PW_MIN_BYTES)
		return -1;
	return 0;
}

rpc_status auth_pw_verify(const char *password, const char *stored, const auth_pw_params *current,
                          int *match, int *outdated)
{
	*match = 0;
	if (outdated != NULL)
		*outdated = 0;
	if (password == NULL || stored == NULL)
		return RPC_STATUS_INVALID_ARGUMENT;
	auth_pw_params pp;
	uint8_t salt[PW_MAX_BYTES], want[PW_MAX_BYTES], got[PW_MAX_BYTES];
	size_t salt_len, key_len;
	rpc_status st = RPC_STATUS_INVALID_ARGUMENT;
	if (parse_stored(stored, &pp, salt, &salt_len, want, &key_len) != 0)
		goto out;
	st = derive(password, salt, salt_len, &pp, got, key_len);
	if (st != RPC_STATUS_OK)
		goto out;
	*match = CRYPTO_memcmp(got, want, key_len) == 0;
	if (outdated != NULL && current != NULL)
		*outdated = pp.log_n != current->log_n || pp.r != current->r ||
		            pp.p != current->p || salt_len != PW_SALT_BYTES ||
		            key_len != PW_KEY_BYTES;
out:
	OPENSSL_cleanse(got, sizeof(got));
	OPENSSL_cleanse(want, sizeof(want));
	return st;
}
