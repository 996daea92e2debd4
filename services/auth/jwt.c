/*
 * jwt.c - Ed25519 signing keys on disk, and access tokens signed with them
 * and verified against them; see auth_jwt.h. The verification itself is
 * the shared verifier of panthera/jwt.h (the gateway runs the same code
 * against the JWKS). OpenSSL does every cryptographic step (key
 * generation, PEM, SHA-256, EVP_DigestSign).
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

#include "panthera/base64.h"
#include "panthera/ids.h"
#include "panthera/log.h"

#define SIG_LEN 64 /* Ed25519 */
#define PUB_LEN 32

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
	if (base64_encode(pub, len, BASE64_URL, k->x, sizeof(k->x), NULL) != 0)
		return -1;
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

/* Append the base64url of in[0..n) to out at *o, within cap (*o <= cap). */
static int put_b64(char *out, size_t cap, size_t *o, const void *in, size_t n)
{
	size_t len;
	if (base64_encode(in, n, BASE64_URL, out + *o, cap - *o, &len) != 0)
		return -1;
	*o += len;
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

/* ---- verifying: panthera/jwt.h's verifier with the ring as key lookup ---- */

/* Runs under the ring's read lock, which keeps the key alive until
 * jwt_verify() returns. */
static int ring_lookup(void *arg, const char *kid, jwt_key *out)
{
	const auth_keyring *kr = arg;
	for (size_t i = 0; i < kr->n; i++) {
		if (strcmp(kr->keys[i].kid, kid) == 0) {
			out->pkey = kr->keys[i].pkey;
			out->alg = JWT_ALG_EDDSA;
			return 0;
		}
	}
	return -1;
}

rpc_status auth_jwt_verify(auth_keyring *kr, const char *issuer, const char *token, int64_t now,
                           auth_claims *out, const char **why)
{
	jwt_status st = JWT_ERR_NO_TOKEN;
	if (kr != NULL && issuer != NULL && token != NULL) {
		size_t n = strnlen(token, JWT_MAX_LEN + 1);
		pthread_rwlock_rdlock(&kr->lock);
		st = jwt_verify(token, n, issuer, now, ring_lookup, kr, out);
		pthread_rwlock_unlock(&kr->lock);
	}
	if (why != NULL)
		*why = st == JWT_OK ? NULL : jwt_status_text(st);
	return st == JWT_OK ? RPC_STATUS_OK : RPC_STATUS_UNAUTHENTICATED;
}
