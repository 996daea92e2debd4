/*
 * jwt.c - the access-token verifier shared by the auth service and the
 * gateway, with the bounded JSON reader it needs; see panthera/jwt.h. Keys
 * come from the caller's lookup; OpenSSL does every cryptographic step
 * (EVP_DigestVerify); base64 and UTF-8 are panthera/base64.h's and
 * panthera/text.h's.
 */
#include "panthera/jwt.h"

#include <string.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#include "panthera/base64.h"
#include "panthera/ids.h"
#include "panthera/text.h"

#define SIG_LEN    64  /* Ed25519, and r || s of ES256 */
#define JSON_DEPTH 16  /* deepest nesting skipped in a header or claims */
#define JSON_STR   256 /* longest string kept (NUL included) */
#define JSON_ITEMS 64  /* most elements of an array read (aud, roles) */
#define HEADER_MAX 512 /* largest decoded header */

/* Every part of a token: base64url without padding (RFC 7515 §2), and
 * canonical, so that one token has exactly one text. */
#define TOKEN_B64 (BASE64_URL | BASE64_CANONICAL)

const char *jwt_alg_name(jwt_alg alg)
{
	switch (alg) {
	case JWT_ALG_EDDSA:
		return "EdDSA";
	case JWT_ALG_ES256:
		return "ES256";
	}
	return "?";
}

const char *jwt_status_text(jwt_status st)
{
	static const char *const text[] = {
#define JWT_STATUS_TEXT_(name, t) t,
	    JWT_STATUS_MAP(JWT_STATUS_TEXT_)
#undef JWT_STATUS_TEXT_
	};
	return (unsigned)st < JWT_STATUS_COUNT ? text[st] : "?";
}

/* ---- a bounded JSON reader, for the header and claims of a token ---- */

typedef struct jp {
	const char *s;
	size_t n, i;
} jp;

static int jp_peek(jp *p)
{
	while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' ||
	                       p->s[p->i] == '\r'))
		p->i++;
	return p->i < p->n ? (unsigned char)p->s[p->i] : -1;
}

static int jp_eat(jp *p, int c)
{
	if (jp_peek(p) != c)
		return -1;
	p->i++;
	return 0;
}

static int hex4(jp *p, uint32_t *v)
{
	if (p->n - p->i < 4)
		return -1;
	uint32_t x = 0;
	for (int k = 0; k < 4; k++) {
		char c = p->s[p->i++];
		x <<= 4;
		if (c >= '0' && c <= '9')
			x |= (uint32_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			x |= (uint32_t)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			x |= (uint32_t)(c - 'A' + 10);
		else
			return -1;
	}
	*v = x;
	return 0;
}

/* Append the UTF-8 of code point cp to out[*o..cap), keeping room for the
 * NUL; nothing when out is NULL (the string is being skipped). */
static int put_cp(char *out, size_t cap, size_t *o, uint32_t cp)
{
	char b[4];
	size_t n = text_utf8_put(cp, b);
	if (out == NULL)
		return 0;
	if (*o + n >= cap)
		return -1;
	memcpy(out + *o, b, n);
	*o += n;
	return 0;
}

/* A string into out[0..cap) (NUL-terminated), or skipped when out is NULL.
 * -1 on bad JSON, on an escaped NUL (it would cut the value short), or
 * when it does not fit. */
static int jp_string(jp *p, char *out, size_t cap)
{
	if (jp_eat(p, '"') != 0)
		return -1;
	size_t o = 0;
	while (p->i < p->n) {
		unsigned char c = (unsigned char)p->s[p->i++];
		uint32_t cp = c;
		if (c == '"') {
			if (out != NULL)
				out[o] = '\0';
			return 0;
		}
		if (c < 0x20)
			return -1;
		if (c == '\\') {
			if (p->i >= p->n)
				return -1;
			c = (unsigned char)p->s[p->i++];
			switch (c) {
			case '"':
			case '\\':
			case '/':
				cp = c;
				break;
			case 'b':
				cp = '\b';
				break;
			case 'f':
				cp = '\f';
				break;
			case 'n':
				cp = '\n';
				break;
			case 'r':
				cp = '\r';
				break;
			case 't':
				cp = '\t';
				break;
			case 'u':
				if (hex4(p, &cp) != 0 || cp == 0)
					return -1;
				if (cp >= 0xdc00 && cp <= 0xdfff)
					return -1; /* a lone low surrogate */
				if (cp >= 0xd800 && cp <= 0xdbff) {
					uint32_t lo;
					if (p->n - p->i < 2 || p->s[p->i] != '\\' ||
					    p->s[p->i + 1] != 'u')
						return -1;
					p->i += 2;
					if (hex4(p, &lo) != 0 || lo < 0xdc00 || lo > 0xdfff)
						return -1;
					cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				}
				break;
			default:
				return -1;
			}
			if (put_cp(out, cap, &o, cp) != 0)
				return -1;
			continue;
		}
		/* a raw byte, UTF-8 or not: compared, never interpreted */
		if (out != NULL) {
			if (o + 1 >= cap)
				return -1;
			out[o++] = (char)c;
		}
	}
	return -1;
}

static int is_digit(const jp *p)
{
	return p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9';
}

/* A number; when `v` is not NULL it must be an integer of at most 18
 * digits (so |v| < 10^18 and adding a leeway cannot overflow). */
static int jp_number(jp *p, int64_t *v)
{
	jp_peek(p);
	int neg = 0, digits = 0, integral = 1;
	int64_t x = 0;
	if (p->i < p->n && p->s[p->i] == '-') {
		neg = 1;
		p->i++;
	}
	if (!is_digit(p))
		return -1;
	if (p->s[p->i] == '0' && p->i + 1 < p->n && p->s[p->i + 1] >= '0' && p->s[p->i + 1] <= '9')
		return -1; /* leading zero */
	while (is_digit(p)) {
		if (digits++ < 18)
			x = x * 10 + (p->s[p->i] - '0');
		p->i++;
	}
	if (p->i < p->n && p->s[p->i] == '.') {
		integral = 0;
		p->i++;
		if (!is_digit(p))
			return -1;
		while (is_digit(p))
			p->i++;
	}
	if (p->i < p->n && (p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
		integral = 0;
		p->i++;
		if (p->i < p->n && (p->s[p->i] == '+' || p->s[p->i] == '-'))
			p->i++;
		if (!is_digit(p))
			return -1;
		while (is_digit(p))
			p->i++;
	}
	if (v != NULL) {
		if (!integral || digits > 18)
			return -1;
		*v = neg ? -x : x;
	}
	return 0;
}

static int jp_literal(jp *p, const char *lit)
{
	size_t n = strlen(lit);
	if (p->n - p->i < n || memcmp(p->s + p->i, lit, n) != 0)
		return -1;
	p->i += n;
	return 0;
}

/* Skip one value of any type, at most JSON_DEPTH levels deep. */
static int jp_skip(jp *p, int depth)
{
	int c = jp_peek(p);
	if (c == '"')
		return jp_string(p, NULL, 0);
	if (c == 't')
		return jp_literal(p, "true");
	if (c == 'f')
		return jp_literal(p, "false");
	if (c == 'n')
		return jp_literal(p, "null");
	if (c == '-' || (c >= '0' && c <= '9'))
		return jp_number(p, NULL);
	if (c != '{' && c != '[')
		return -1;
	if (depth >= JSON_DEPTH)
		return -1;
	int close = c == '{' ? '}' : ']';
	p->i++;
	if (jp_peek(p) == close) {
		p->i++;
		return 0;
	}
	for (;;) {
		if (close == '}' && (jp_string(p, NULL, 0) != 0 || jp_eat(p, ':') != 0))
			return -1;
		if (jp_skip(p, depth + 1) != 0)
			return -1;
		c = jp_peek(p);
		p->i++;
		if (c == close)
			return 0;
		if (c != ',')
			return -1;
	}
}

/* The members of the top-level object, each given to `member`, which
 * reads its value; then nothing but whitespace may follow. */
typedef int (*jp_member_fn)(jp *p, const char *key, void *arg);

static int jp_object(jp *p, jp_member_fn member, void *arg)
{
	if (jp_eat(p, '{') != 0)
		return -1;
	if (jp_peek(p) == '}') {
		p->i++;
	} else {
		for (;;) {
			char key[JSON_STR];
			if (jp_string(p, key, sizeof(key)) != 0 || jp_eat(p, ':') != 0 ||
			    member(p, key, arg) != 0)
				return -1;
			int c = jp_peek(p);
			p->i++;
			if (c == '}')
				break;
			if (c != ',')
				return -1;
		}
	}
	return jp_peek(p) == -1 ? 0 : -1;
}

/* An array whose elements are each read by `one`, at most JSON_ITEMS. */
static int jp_array(jp *p, int (*one)(jp *, void *), void *arg)
{
	if (jp_eat(p, '[') != 0)
		return -1;
	if (jp_peek(p) == ']') {
		p->i++;
		return 0;
	}
	for (int n = 0; n < JSON_ITEMS; n++) {
		if (one(p, arg) != 0)
			return -1;
		int c = jp_peek(p);
		p->i++;
		if (c == ']')
			return 0;
		if (c != ',')
			return -1;
	}
	return -1;
}

/* Each known member may appear once: a second "alg" could otherwise hide
 * behind the first from another reader. */
static int seen_once(unsigned *seen, unsigned bit)
{
	if (*seen & bit)
		return -1;
	*seen |= bit;
	return 0;
}

/* ---- header ---- */

enum { SEEN_ALG = 1, SEEN_TYP = 2, SEEN_KID = 4, SEEN_CRIT = 8 };

typedef struct jwt_header {
	char alg[32], typ[32], kid[JWT_KID_MAX];
	unsigned seen;
} jwt_header;

static int header_member(jp *p, const char *key, void *arg)
{
	jwt_header *h = arg;
	if (strcmp(key, "alg") == 0)
		return seen_once(&h->seen, SEEN_ALG) || jp_string(p, h->alg, sizeof(h->alg));
	if (strcmp(key, "typ") == 0)
		return seen_once(&h->seen, SEEN_TYP) || jp_string(p, h->typ, sizeof(h->typ));
	if (strcmp(key, "kid") == 0)
		return seen_once(&h->seen, SEEN_KID) || jp_string(p, h->kid, sizeof(h->kid));
	if (strcmp(key, "crit") == 0)
		h->seen |= SEEN_CRIT; /* refused once the header is read */
	return jp_skip(p, 1);
}

/* ---- claims ---- */

enum {
	SEEN_ISS = 1,
	SEEN_SUB = 2,
	SEEN_AUD = 4,
	SEEN_IAT = 8,
	SEEN_NBF = 16,
	SEEN_EXP = 32,
	SEEN_ROLES = 64,
	SEEN_SID = 128
};

typedef struct jwt_body {
	char iss[JSON_STR], sub[64], sid[64];
	int aud_ok;
	int64_t iat, nbf, exp;
	unsigned roles;
	unsigned seen;
} jwt_body;

static int read_role(jp *p, void *arg)
{
	jwt_body *b = arg;
	char r[16];
	if (jp_string(p, r, sizeof(r)) != 0)
		return -1;
	if (strcmp(r, "USER") == 0)
		b->roles |= JWT_ROLE_USER;
	else if (strcmp(r, "ADMIN") == 0)
		b->roles |= JWT_ROLE_ADMIN;
	else
		return -1;
	return 0;
}

static int read_aud(jp *p, void *arg)
{
	jwt_body *b = arg;
	char a[JSON_STR];
	if (jp_string(p, a, sizeof(a)) != 0)
		return -1;
	if (strcmp(a, JWT_AUD) == 0)
		b->aud_ok = 1;
	return 0;
}

static int body_member(jp *p, const char *key, void *arg)
{
	jwt_body *b = arg;
	if (strcmp(key, "iss") == 0)
		return seen_once(&b->seen, SEEN_ISS) || jp_string(p, b->iss, sizeof(b->iss));
	if (strcmp(key, "sub") == 0)
		return seen_once(&b->seen, SEEN_SUB) || jp_string(p, b->sub, sizeof(b->sub));
	if (strcmp(key, "sid") == 0)
		return seen_once(&b->seen, SEEN_SID) || jp_string(p, b->sid, sizeof(b->sid));
	if (strcmp(key, "aud") == 0) {
		if (seen_once(&b->seen, SEEN_AUD))
			return -1;
		return jp_peek(p) == '[' ? jp_array(p, read_aud, b) : read_aud(p, b);
	}
	if (strcmp(key, "roles") == 0)
		return seen_once(&b->seen, SEEN_ROLES) || jp_array(p, read_role, b);
	if (strcmp(key, "iat") == 0)
		return seen_once(&b->seen, SEEN_IAT) || jp_number(p, &b->iat);
	if (strcmp(key, "nbf") == 0)
		return seen_once(&b->seen, SEEN_NBF) || jp_number(p, &b->nbf);
	if (strcmp(key, "exp") == 0)
		return seen_once(&b->seen, SEEN_EXP) || jp_number(p, &b->exp);
	return jp_skip(p, 1);
}

/* ---- signatures ---- */

/* The DER ECDSA-Sig-Value of the JWS form r || s (32 bytes each), into
 * der[0..cap); its length, or 0 when OpenSSL fails. */
static size_t es256_der(const uint8_t sig[SIG_LEN], uint8_t *der, size_t cap)
{
	size_t n = 0;
	ECDSA_SIG *es = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(sig, SIG_LEN / 2, NULL);
	BIGNUM *s = BN_bin2bn(sig + SIG_LEN / 2, SIG_LEN / 2, NULL);
	if (es == NULL || r == NULL || s == NULL || ECDSA_SIG_set0(es, r, s) != 1) {
		BN_free(r);
		BN_free(s);
		ECDSA_SIG_free(es);
		return 0;
	}
	/* es owns r and s from here */
	int len = i2d_ECDSA_SIG(es, NULL);
	if (len > 0 && (size_t)len <= cap) {
		uint8_t *p = der;
		n = i2d_ECDSA_SIG(es, &p) == len ? (size_t)len : 0;
	}
	ECDSA_SIG_free(es);
	return n;
}

/* 1 when `pkey` is of the type `alg` needs (a lookup that hands out a
 * mismatched pair is a bug there, refused here all the same). */
static int key_fits(const jwt_key *k)
{
	if (k->pkey == NULL)
		return 0;
	if (k->alg == JWT_ALG_EDDSA)
		return EVP_PKEY_get_id(k->pkey) == EVP_PKEY_ED25519;
	if (k->alg == JWT_ALG_ES256) {
		char group[32];
		return EVP_PKEY_get_id(k->pkey) == EVP_PKEY_EC &&
		       EVP_PKEY_get_group_name(k->pkey, group, sizeof(group), NULL) == 1 &&
		       strcmp(group, "prime256v1") == 0;
	}
	return 0;
}

/* JWT_OK, JWT_ERR_SIGNATURE or JWT_ERR_INTERNAL. */
static jwt_status check_signature(const jwt_key *k, const uint8_t sig[SIG_LEN], const char *input,
                                  size_t input_len)
{
	uint8_t der[80];
	const uint8_t *s = sig;
	size_t sn = SIG_LEN;
	if (k->alg == JWT_ALG_ES256) {
		if ((sn = es256_der(sig, der, sizeof(der))) == 0)
			return JWT_ERR_INTERNAL;
		s = der;
	}
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (md == NULL)
		return JWT_ERR_INTERNAL;
	jwt_status st = JWT_ERR_SIGNATURE;
	if (EVP_DigestVerifyInit(md, NULL, k->alg == JWT_ALG_ES256 ? EVP_sha256() : NULL, NULL,
	                         k->pkey) != 1)
		st = JWT_ERR_INTERNAL;
	else if (EVP_DigestVerify(md, s, sn, (const unsigned char *)input, input_len) == 1)
		st = JWT_OK;
	EVP_MD_CTX_free(md);
	return st;
}

/* ---- verifying ---- */

jwt_status jwt_verify(const char *token, size_t n, const char *issuer, int64_t now,
                      jwt_key_lookup_fn lookup, void *arg, jwt_claims *out)
{
	if (token == NULL || issuer == NULL || lookup == NULL || n == 0)
		return JWT_ERR_NO_TOKEN;
	if (n > JWT_MAX_LEN)
		return JWT_ERR_TOO_LONG;
	const char *d1 = memchr(token, '.', n);
	const char *d2 = d1 ? memchr(d1 + 1, '.', n - (size_t)(d1 + 1 - token)) : NULL;
	if (d2 == NULL || memchr(d2 + 1, '.', n - (size_t)(d2 + 1 - token)) != NULL)
		return JWT_ERR_FORM;
	size_t hlen = (size_t)(d1 - token), plen = (size_t)(d2 - d1 - 1);
	size_t slen = n - (size_t)(d2 + 1 - token);
	if (hlen == 0 || plen == 0)
		return JWT_ERR_FORM;

	char hbuf[HEADER_MAX];
	size_t hn;
	if (base64_decode(token, hlen, TOKEN_B64, (uint8_t *)hbuf, sizeof(hbuf), &hn) != 0)
		return JWT_ERR_HEADER;
	jwt_header h = {0};
	jp hp = {hbuf, hn, 0};
	if (jp_object(&hp, header_member, &h) != 0)
		return JWT_ERR_HEADER;
	if (h.seen & SEEN_CRIT)
		return JWT_ERR_CRIT;
	jwt_alg alg;
	if (!(h.seen & SEEN_ALG))
		return JWT_ERR_ALG;
	if (strcmp(h.alg, "EdDSA") == 0)
		alg = JWT_ALG_EDDSA;
	else if (strcmp(h.alg, "ES256") == 0)
		alg = JWT_ALG_ES256;
	else
		return JWT_ERR_ALG; /* "none", HS256 and the rest */
	if ((h.seen & SEEN_TYP) && strcmp(h.typ, "JWT") != 0)
		return JWT_ERR_TYP;
	if (!(h.seen & SEEN_KID) || h.kid[0] == '\0')
		return JWT_ERR_NO_KID;
	uint8_t sig[SIG_LEN];
	size_t sn;
	if (base64_decode(d2 + 1, slen, TOKEN_B64, sig, sizeof(sig), &sn) != 0 || sn != SIG_LEN)
		return JWT_ERR_SIG_ENCODING;

	jwt_key key = {0};
	if (lookup(arg, h.kid, &key) != 0)
		return JWT_ERR_UNKNOWN_KID;
	if (key.alg != alg || !key_fits(&key))
		return JWT_ERR_ALG_MISMATCH;
	jwt_status st = check_signature(&key, sig, token, (size_t)(d2 - token));
	if (st != JWT_OK)
		return st;

	/* Only signed claims are read. */
	char pbuf[JWT_MAX_LEN];
	size_t pn;
	if (base64_decode(d1 + 1, plen, TOKEN_B64, (uint8_t *)pbuf, sizeof(pbuf), &pn) != 0)
		return JWT_ERR_CLAIMS;
	jwt_body b = {0};
	jp bp = {pbuf, pn, 0};
	if (jp_object(&bp, body_member, &b) != 0)
		return JWT_ERR_CLAIMS;
	unsigned need = SEEN_ISS | SEEN_SUB | SEEN_AUD | SEEN_EXP | SEEN_ROLES | SEEN_SID;
	if ((b.seen & need) != need)
		return JWT_ERR_MISSING_CLAIM;
	if (strcmp(b.iss, issuer) != 0)
		return JWT_ERR_ISSUER;
	if (!b.aud_ok)
		return JWT_ERR_AUDIENCE;
	/* exp and nbf are below 10^18 in magnitude: the sums cannot overflow,
	 * whatever `now` is. */
	if (b.exp + JWT_LEEWAY_S <= now)
		return JWT_ERR_EXPIRED;
	if ((b.seen & SEEN_NBF) && b.nbf - JWT_LEEWAY_S > now)
		return JWT_ERR_NOT_YET_VALID;
	if (!id_is_uuid(b.sub) || !id_is_uuid(b.sid))
		return JWT_ERR_SUBJECT;
	memset(out, 0, sizeof(*out));
	memcpy(out->sub, b.sub, sizeof(out->sub) - 1);
	memcpy(out->sid, b.sid, sizeof(out->sid) - 1);
	out->iat = b.iat;
	out->nbf = b.nbf;
	out->exp = b.exp;
	out->roles = b.roles;
	return JWT_OK;
}
