/*
 * jwt.c - Ed25519 signing keys on disk, access tokens signed and verified
 * with them, and the bounded JSON reader that verification needs; see
 * auth_jwt.h. OpenSSL does every cryptographic step (key generation, PEM,
 * SHA-256, EVP_DigestSign / EVP_DigestVerify).
 */
#include "auth_jwt.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

#include "auth_crypto.h"
#include "panthera/ids.h"
#include "panthera/log.h"

#define SIG_LEN    64 /* Ed25519 */
#define PUB_LEN    32
#define JSON_DEPTH 16  /* deepest nesting skipped in a header or claims */
#define JSON_STR   256 /* longest string kept (NUL included) */

typedef struct ring_key {
	EVP_PKEY *pkey;
	char kid[AUTH_KID_LEN + 1];
	char x[AUTH_JWK_X_LEN + 1];
	struct timespec mtime;
} ring_key;

struct auth_keyring {
	pthread_rwlock_t lock;
	char dir[1024];               /* <data_dir>/keys */
	ring_key keys[AUTH_MAX_KEYS]; /* newest (the signer) first */
	size_t n;
};

/* ---- keys ---- */

/* kid and x of a key from its raw public key. */
static int key_ids(EVP_PKEY *pkey, ring_key *k)
{
	uint8_t pub[PUB_LEN], h[SHA256_DIGEST_LENGTH];
	size_t len = sizeof(pub);
	if (EVP_PKEY_get_raw_public_key(pkey, pub, &len) != 1 || len != PUB_LEN)
		return -1;
	SHA256(pub, len, h);
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < AUTH_KID_LEN / 2; i++) {
		k->kid[2 * i] = hex[h[i] >> 4];
		k->kid[2 * i + 1] = hex[h[i] & 15];
	}
	k->kid[AUTH_KID_LEN] = '\0';
	auth_b64_encode(pub, len, k->x, 1);
	k->pkey = pkey;
	return 0;
}

/* Never prompt for a passphrase: an encrypted key file is refused. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

static int has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n > m && strcmp(s + n - m, suffix) == 0;
}

/* Load one key file into kr (skipping, with a warning, what is not an
 * Ed25519 private key or is a key already loaded). */
static void load_file(auth_keyring *kr, const char *name)
{
	char path[1280];
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", kr->dir, name) >= sizeof(path))
		return;
	struct stat sb;
	if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
		return;
	if (sb.st_mode & 077)
		log_write(LOG_WARN, NULL, "auth.keys",
		          "signing key %s is readable by group or others; make it 0600", path);
	if (kr->n == AUTH_MAX_KEYS) {
		log_write(LOG_WARN, NULL, "auth.keys", "more than %d signing keys: %s ignored",
		          AUTH_MAX_KEYS, path);
		return;
	}
	BIO *bio = BIO_new_file(path, "r");
	EVP_PKEY *pkey = bio ? PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL) : NULL;
	BIO_free(bio);
	ring_key k = {0};
	if (pkey == NULL || EVP_PKEY_get_id(pkey) != EVP_PKEY_ED25519 || key_ids(pkey, &k) != 0) {
		log_write(LOG_WARN, NULL, "auth.keys", "%s holds no Ed25519 private key: ignored",
		          path);
		EVP_PKEY_free(pkey);
		return;
	}
	for (size_t i = 0; i < kr->n; i++) {
		if (strcmp(kr->keys[i].kid, k.kid) == 0) {
			EVP_PKEY_free(pkey);
			return; /* the same key under two names */
		}
	}
	k.mtime = sb.st_mtim;
	kr->keys[kr->n++] = k;
}

static int newer_first(const void *a, const void *b)
{
	const ring_key *x = a, *y = b;
	if (x->mtime.tv_sec != y->mtime.tv_sec)
		return x->mtime.tv_sec > y->mtime.tv_sec ? -1 : 1;
	if (x->mtime.tv_nsec != y->mtime.tv_nsec)
		return x->mtime.tv_nsec > y->mtime.tv_nsec ? -1 : 1;
	return strcmp(y->kid, x->kid);
}

/* Generate a key and write it to <dir>/<kid>.pem (0600) through a
 * temporary file and a rename, so a crash never leaves half a key. */
static rpc_status generate(const char *dir, ring_key *out)
{
	rpc_status st = RPC_STATUS_INTERNAL;
	EVP_PKEY *pkey = NULL;
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
	if (ctx == NULL || EVP_PKEY_keygen_init(ctx) != 1 || EVP_PKEY_keygen(ctx, &pkey) != 1)
		goto out;
	ring_key k = {0};
	if (key_ids(pkey, &k) != 0)
		goto out;
	char tmp[1280], path[1280];
	if ((size_t)snprintf(path, sizeof(path), "%s/%s.pem", dir, k.kid) >= sizeof(path) ||
	    (size_t)snprintf(tmp, sizeof(tmp), "%s/%s.pem.tmp", dir, k.kid) >= sizeof(tmp))
		goto out;
	unlink(tmp); /* left by a crash; we hold the lock */
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (f == NULL) {
		log_write(LOG_ERROR, NULL, "auth.keys", "cannot write %s: %s", tmp,
		          strerror(errno));
		if (fd >= 0)
			close(fd);
		goto out;
	}
	int ok = PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL) == 1 && fflush(f) == 0 &&
	         fsync(fileno(f)) == 0;
	ok = fclose(f) == 0 && ok;
	if (!ok || rename(tmp, path) != 0) {
		log_write(LOG_ERROR, NULL, "auth.keys", "cannot write %s: %s", path,
		          strerror(errno));
		unlink(tmp);
		goto out;
	}
	struct stat sb;
	if (stat(path, &sb) == 0)
		k.mtime = sb.st_mtim;
	log_write(LOG_INFO, NULL, "auth.keys", "generated signing key %s", k.kid);
	*out = k;
	pkey = NULL; /* owned by *out */
	st = RPC_STATUS_OK;
out:
	EVP_PKEY_free(pkey);
	EVP_PKEY_CTX_free(ctx);
	return st;
}

/* Create `path` as a folder (0700) unless it exists. */
static int make_dir(const char *path)
{
	if (mkdir(path, 0700) == 0 || errno == EEXIST)
		return 0;
	log_write(LOG_ERROR, NULL, "auth.keys", "cannot create %s: %s", path, strerror(errno));
	return -1;
}

/* The lock that serialises key generation between processes on one
 * data_dir; released by closing the returned descriptor. */
static int lock_dir(const char *dir)
{
	char path[1280];
	if ((size_t)snprintf(path, sizeof(path), "%s/.lock", dir) >= sizeof(path))
		return -1;
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	while (fcntl(fd, F_SETLKW, &fl) != 0) {
		if (errno != EINTR) {
			close(fd);
			return -1;
		}
	}
	return fd;
}

rpc_status auth_keyring_load(auth_keyring **out, const char *data_dir)
{
	*out = NULL;
	if (data_dir == NULL || data_dir[0] == '\0')
		return RPC_STATUS_INVALID_ARGUMENT;
	auth_keyring *kr = calloc(1, sizeof(*kr));
	if (kr == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	if (pthread_rwlock_init(&kr->lock, NULL) != 0) {
		free(kr);
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	}
	if ((size_t)snprintf(kr->dir, sizeof(kr->dir), "%s/keys", data_dir) >= sizeof(kr->dir)) {
		auth_keyring_free(kr);
		return RPC_STATUS_INVALID_ARGUMENT;
	}
	if (make_dir(data_dir) != 0 || make_dir(kr->dir) != 0) {
		auth_keyring_free(kr);
		return RPC_STATUS_INTERNAL;
	}
	int lock = lock_dir(kr->dir);
	if (lock < 0) {
		log_write(LOG_ERROR, NULL, "auth.keys", "cannot lock %s", kr->dir);
		auth_keyring_free(kr);
		return RPC_STATUS_INTERNAL;
	}
	rpc_status st = RPC_STATUS_OK;
	DIR *d = opendir(kr->dir);
	if (d == NULL) {
		log_write(LOG_ERROR, NULL, "auth.keys", "cannot read %s: %s", kr->dir,
		          strerror(errno));
		st = RPC_STATUS_INTERNAL;
	} else {
		struct dirent *e;
		while ((e = readdir(d)) != NULL) {
			if (e->d_name[0] != '.' && has_suffix(e->d_name, ".pem"))
				load_file(kr, e->d_name);
		}
		closedir(d);
	}
	if (st == RPC_STATUS_OK && kr->n == 0 &&
	    (st = generate(kr->dir, &kr->keys[0])) == RPC_STATUS_OK)
		kr->n = 1;
	close(lock);
	if (st != RPC_STATUS_OK) {
		auth_keyring_free(kr);
		return st;
	}
	qsort(kr->keys, kr->n, sizeof(kr->keys[0]), newer_first);
	*out = kr;
	return RPC_STATUS_OK;
}

void auth_keyring_free(auth_keyring *kr)
{
	if (kr == NULL)
		return;
	for (size_t i = 0; i < kr->n; i++)
		EVP_PKEY_free(kr->keys[i].pkey);
	pthread_rwlock_destroy(&kr->lock);
	free(kr);
}

rpc_status auth_keyring_rotate(auth_keyring *kr, char *kid_out)
{
	if (kr == NULL)
		return RPC_STATUS_INVALID_ARGUMENT;
	int lock = lock_dir(kr->dir);
	if (lock < 0)
		return RPC_STATUS_INTERNAL;
	ring_key k;
	pthread_rwlock_wrlock(&kr->lock);
	rpc_status st =
	    kr->n == AUTH_MAX_KEYS ? RPC_STATUS_RESOURCE_EXHAUSTED : generate(kr->dir, &k);
	if (st == RPC_STATUS_OK) {
		memmove(&kr->keys[1], &kr->keys[0], kr->n * sizeof(kr->keys[0]));
		kr->keys[0] = k;
		kr->n++;
		if (kid_out != NULL)
			memcpy(kid_out, k.kid, AUTH_KID_LEN + 1);
	}
	pthread_rwlock_unlock(&kr->lock);
	close(lock);
	return st;
}

rpc_status auth_keyring_each(auth_keyring *kr, auth_jwk_fn fn, void *arg)
{
	rpc_status st = RPC_STATUS_OK;
	pthread_rwlock_rdlock(&kr->lock);
	for (size_t i = 0; i < kr->n && st == RPC_STATUS_OK; i++)
		st = fn(kr->keys[i].kid, kr->keys[i].x, arg);
	pthread_rwlock_unlock(&kr->lock);
	return st;
}

/* ---- signing ---- */

int auth_jwt_issuer_ok(const char *s)
{
	size_t n = 0;
	for (; s != NULL && s[n] != '\0'; n++) {
		if (s[n] < 0x20 || s[n] > 0x7e || s[n] == '"' || s[n] == '\\' || n >= 255)
			return 0;
	}
	return n > 0;
}

/* Append the base64url of in[0..n) to out at *o, within cap. */
static int put_b64(char *out, size_t cap, size_t *o, const void *in, size_t n)
{
	if (*o + auth_b64_len(n) + 1 > cap)
		return -1;
	auth_b64_encode(in, n, out + *o, 1);
	*o += auth_b64_len(n);
	return 0;
}

rpc_status auth_jwt_sign(auth_keyring *kr, const char *issuer, const auth_claims *c, char *out,
                         size_t cap)
{
	if (cap > 0)
		out[0] = '\0';
	if (kr == NULL || !auth_jwt_issuer_ok(issuer) || !id_is_uuid(c->sub) || !id_is_uuid(c->sid))
		return RPC_STATUS_INVALID_ARGUMENT;
	char roles[32];
	snprintf(roles, sizeof(roles), "%s%s%s", c->roles & AUTH_ROLE_USER ? "\"USER\"" : "",
	         (c->roles & AUTH_ROLE_USER) && (c->roles & AUTH_ROLE_ADMIN) ? "," : "",
	         c->roles & AUTH_ROLE_ADMIN ? "\"ADMIN\"" : "");
	char claims[1024];
	int cn = snprintf(
	    claims, sizeof(claims),
	    "{\"iss\":\"%s\",\"sub\":\"%s\",\"aud\":\"" AUTH_JWT_AUD
	    "\",\"iat\":%lld,\"nbf\":%lld,\"exp\":%lld,\"roles\":[%s],\"sid\":\"%s\"}",
	    issuer, c->sub, (long long)c->iat, (long long)c->nbf, (long long)c->exp, roles, c->sid);
	if (cn < 0 || (size_t)cn >= sizeof(claims))
		return RPC_STATUS_INVALID_ARGUMENT;

	rpc_status st = RPC_STATUS_INTERNAL;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (md == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	pthread_rwlock_rdlock(&kr->lock);
	const ring_key *k = &kr->keys[0];
	char header[128];
	int hn = snprintf(header, sizeof(header),
	                  "{\"alg\":\"EdDSA\",\"typ\":\"JWT\",\"kid\":\"%s\"}", k->kid);
	size_t o = 0;
	uint8_t sig[SIG_LEN];
	size_t sig_len = sizeof(sig);
	if (put_b64(out, cap, &o, header, (size_t)hn) != 0 || o + 1 >= cap) {
		st = RPC_STATUS_RESOURCE_EXHAUSTED;
		goto out;
	}
	out[o++] = '.';
	if (put_b64(out, cap, &o, claims, (size_t)cn) != 0) {
		st = RPC_STATUS_RESOURCE_EXHAUSTED;
		goto out;
	}
	if (EVP_DigestSignInit(md, NULL, NULL, NULL, k->pkey) != 1 ||
	    EVP_DigestSign(md, sig, &sig_len, (const unsigned char *)out, o) != 1 ||
	    sig_len != SIG_LEN)
		goto out;
	if (o + 1 >= cap) {
		st = RPC_STATUS_RESOURCE_EXHAUSTED;
		goto out;
	}
	out[o++] = '.';
	st = put_b64(out, cap, &o, sig, sig_len) == 0 ? RPC_STATUS_OK
	                                              : RPC_STATUS_RESOURCE_EXHAUSTED;
out:
	pthread_rwlock_unlock(&kr->lock);
	EVP_MD_CTX_free(md);
	if (st != RPC_STATUS_OK && cap > 0)
		out[0] = '\0';
	return st;
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

/* Append UTF-8 of code point cp to out (when out is not NULL) within cap,
 * keeping room for the NUL. */
static int put_cp(char *out, size_t cap, size_t *o, uint32_t cp)
{
	uint8_t b[4];
	size_t n;
	if (cp < 0x80) {
		b[0] = (uint8_t)cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (uint8_t)(0xc0 | cp >> 6);
		b[1] = (uint8_t)(0x80 | (cp & 63));
		n = 2;
	} else if (cp < 0x10000) {
		b[0] = (uint8_t)(0xe0 | cp >> 12);
		b[1] = (uint8_t)(0x80 | ((cp >> 6) & 63));
		b[2] = (uint8_t)(0x80 | (cp & 63));
		n = 3;
	} else {
		b[0] = (uint8_t)(0xf0 | cp >> 18);
		b[1] = (uint8_t)(0x80 | ((cp >> 12) & 63));
		b[2] = (uint8_t)(0x80 | ((cp >> 6) & 63));
		b[3] = (uint8_t)(0x80 | (cp & 63));
		n = 4;
	}
	if (out == NULL)
		return 0;
	if (*o + n >= cap)
		return -1;
	memcpy(out + *o, b, n);
	*o += n;
	return 0;
}

/* A string into out[0..cap) (NUL-terminated), or skipped when out is NULL.
 * -1 on bad JSON or when it does not fit. */
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
				if (hex4(p, &cp) != 0)
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

/* A number; when `v` is not NULL it must be an integer of at most 18
 * digits, stored in *v. */
static int jp_number(jp *p, int64_t *v)
{
	jp_peek(p);
	int neg = 0, digits = 0, integral = 1;
	int64_t x = 0;
	if (p->i < p->n && p->s[p->i] == '-') {
		neg = 1;
		p->i++;
	}
	if (p->i >= p->n || p->s[p->i] < '0' || p->s[p->i] > '9')
		return -1;
	if (p->s[p->i] == '0' && p->i + 1 < p->n && p->s[p->i + 1] >= '0' && p->s[p->i + 1] <= '9')
		return -1; /* leading zero */
	while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') {
		if (digits++ < 18)
			x = x * 10 + (p->s[p->i] - '0');
		p->i++;
	}
	if (p->i < p->n && p->s[p->i] == '.') {
		integral = 0;
		p->i++;
		if (p->i >= p->n || p->s[p->i] < '0' || p->s[p->i] > '9')
			return -1;
		while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9')
			p->i++;
	}
	if (p->i < p->n && (p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
		integral = 0;
		p->i++;
		if (p->i < p->n && (p->s[p->i] == '+' || p->s[p->i] == '-'))
			p->i++;
		if (p->i >= p->n || p->s[p->i] < '0' || p->s[p->i] > '9')
			return -1;
		while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9')
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

/* Each known member may appear once. */
static int seen_once(unsigned *seen, unsigned bit)
{
	if (*seen & bit)
		return -1;
	*seen |= bit;
	return 0;
}

typedef struct jwt_header {
	char alg[32], typ[32], kid[32];
	unsigned seen;
} jwt_header;

static int header_member(jp *p, const char *key, void *arg)
{
	jwt_header *h = arg;
	if (strcmp(key, "alg") == 0)
		return seen_once(&h->seen, 1) || jp_string(p, h->alg, sizeof(h->alg));
	if (strcmp(key, "typ") == 0)
		return seen_once(&h->seen, 2) || jp_string(p, h->typ, sizeof(h->typ));
	if (strcmp(key, "kid") == 0)
		return seen_once(&h->seen, 4) || jp_string(p, h->kid, sizeof(h->kid));
	if (strcmp(key, "crit") == 0)
		return -1; /* no extension is understood here */
	return jp_skip(p, 1);
}

typedef struct jwt_body {
	char iss[JSON_STR], sub[64], sid[64];
	int aud_ok;
	int64_t iat, nbf, exp;
	unsigned roles;
	unsigned seen;
} jwt_body;

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

static int read_role(jp *p, jwt_body *b)
{
	char r[16];
	if (jp_string(p, r, sizeof(r)) != 0)
		return -1;
	if (strcmp(r, "USER") == 0)
		b->roles |= AUTH_ROLE_USER;
	else if (strcmp(r, "ADMIN") == 0)
		b->roles |= AUTH_ROLE_ADMIN;
	else
		return -1;
	return 0;
}

static int read_aud(jp *p, jwt_body *b)
{
	char a[JSON_STR];
	if (jp_string(p, a, sizeof(a)) != 0)
		return -1;
	if (strcmp(a, AUTH_JWT_AUD) == 0)
		b->aud_ok = 1;
	return 0;
}

/* An array whose elements are each read by `one`. */
static int jp_array(jp *p, jwt_body *b, int (*one)(jp *, jwt_body *))
{
	if (jp_eat(p, '[') != 0)
		return -1;
	if (jp_peek(p) == ']') {
		p->i++;
		return 0;
	}
	for (int n = 0; n < 64; n++) {
		if (one(p, b) != 0)
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
		return jp_peek(p) == '[' ? jp_array(p, b, read_aud) : read_aud(p, b);
	}
	if (strcmp(key, "roles") == 0)
		return seen_once(&b->seen, SEEN_ROLES) || jp_array(p, b, read_role);
	if (strcmp(key, "iat") == 0)
		return seen_once(&b->seen, SEEN_IAT) || jp_number(p, &b->iat);
	if (strcmp(key, "nbf") == 0)
		return seen_once(&b->seen, SEEN_NBF) || jp_number(p, &b->nbf);
	if (strcmp(key, "exp") == 0)
		return seen_once(&b->seen, SEEN_EXP) || jp_number(p, &b->exp);
	return jp_skip(p, 1);
}

/* ---- verifying ---- */

static const char *verify(auth_keyring *kr, const char *issuer, const char *token, int64_t now,
                          auth_claims *out)
{
	size_t n = strnlen(token, AUTH_JWT_MAX + 1);
	if (n > AUTH_JWT_MAX)
		return "token too long";
	const char *d1 = memchr(token, '.', n);
	const char *d2 = d1 ? memchr(d1 + 1, '.', n - (size_t)(d1 + 1 - token)) : NULL;
	if (d2 == NULL || memchr(d2 + 1, '.', n - (size_t)(d2 + 1 - token)) != NULL)
		return "not a compact JWS";
	size_t hlen = (size_t)(d1 - token), plen = (size_t)(d2 - d1 - 1);
	size_t slen = n - (size_t)(d2 + 1 - token);
	char hbuf[512], pbuf[AUTH_JWT_MAX];
	uint8_t sig[SIG_LEN];
	size_t hn, pn, sn;
	if (hlen == 0 || plen == 0 ||
	    auth_b64_decode(token, hlen, (uint8_t *)hbuf, sizeof(hbuf), &hn, 1) != 0)
		return "bad header encoding";
	jwt_header h = {0};
	jp hp = {hbuf, hn, 0};
	if (jp_object(&hp, header_member, &h) != 0)
		return "bad header";
	if (!(h.seen & 1) || strcmp(h.alg, "EdDSA") != 0)
		return "algorithm not EdDSA";
	if ((h.seen & 2) && strcmp(h.typ, "JWT") != 0)
		return "typ not JWT";
	if (!(h.seen & 4))
		return "no kid";
	if (auth_b64_decode(d2 + 1, slen, sig, sizeof(sig), &sn, 1) != 0 || sn != SIG_LEN)
		return "bad signature encoding";

	const char *why = NULL;
	pthread_rwlock_rdlock(&kr->lock);
	EVP_PKEY *key = NULL;
	for (size_t i = 0; i < kr->n && key == NULL; i++) {
		if (strcmp(kr->keys[i].kid, h.kid) == 0)
			key = kr->keys[i].pkey;
	}
	if (key == NULL) {
		why = "unknown kid";
	} else {
		EVP_MD_CTX *md = EVP_MD_CTX_new();
		if (md == NULL)
			why = "out of memory";
		else if (EVP_DigestVerifyInit(md, NULL, NULL, NULL, key) != 1 ||
		         EVP_DigestVerify(md, sig, sn, (const unsigned char *)token,
		                          (size_t)(d2 - token)) != 1)
			why = "bad signature";
		EVP_MD_CTX_free(md);
	}
	pthread_rwlock_unlock(&kr->lock);
	if (why != NULL)
		return why;

	if (auth_b64_decode(d1 + 1, plen, (uint8_t *)pbuf, sizeof(pbuf), &pn, 1) != 0)
		return "bad claims encoding";
	jwt_body b = {0};
	jp bp = {pbuf, pn, 0};
	if (jp_object(&bp, body_member, &b) != 0)
		return "bad claims";
	unsigned need = SEEN_ISS | SEEN_SUB | SEEN_AUD | SEEN_EXP | SEEN_ROLES | SEEN_SID;
	if ((b.seen & need) != need)
		return "missing claim";
	if (strcmp(b.iss, issuer) != 0)
		return "wrong issuer";
	if (!b.aud_ok)
		return "wrong audience";
	if (now >= b.exp + AUTH_JWT_LEEWAY_S)
		return "expired";
	if ((b.seen & SEEN_NBF) && b.nbf > now + AUTH_JWT_LEEWAY_S)
		return "not yet valid";
	if (!id_is_uuid(b.sub) || !id_is_uuid(b.sid))
		return "sub or sid not a UUID";
	memset(out, 0, sizeof(*out));
	memcpy(out->sub, b.sub, sizeof(out->sub) - 1);
	memcpy(out->sid, b.sid, sizeof(out->sid) - 1);
	out->iat = b.iat;
	out->nbf = b.nbf;
	out->exp = b.exp;
	out->roles = b.roles;
	return NULL;
}

rpc_status auth_jwt_verify(auth_keyring *kr, const char *issuer, const char *token, int64_t now,
                           auth_claims *out, const char **why)
{
	const char *w = kr == NULL || issuer == NULL || token == NULL
	                    ? "no token"
	                    : verify(kr, issuer, token, now, out);
	if (why != NULL)
		*why = w;
	return w == NULL ? RPC_STATUS_OK : RPC_STATUS_UNAUTHENTICATED;
}
