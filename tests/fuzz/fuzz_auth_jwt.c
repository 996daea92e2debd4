/*
 * fuzz_auth_jwt.c - libFuzzer target of auth_jwt_verify(): the shared
 * verifier of access tokens (services/common/src/jwt.c: base64url, a
 * bounded JSON reader, Ed25519) with auth's keyring as its key lookup
 * (services/auth/jwt.c). The gateway's side, JWKS key sets and ES256, is
 * fuzz_gateway_jwt's. The first input byte picks the mode:
 *   even: the rest is a token, as a client could send it;
 *   odd:  the rest is the claims JSON, which this harness puts behind a
 *         good header and signs with the ring's key, so that the claims
 *         reader (reached only behind a valid signature) is fuzzed too;
 *         header parsing is the even mode's.
 * The keyring is generated once into a temporary folder.
 *
 * libFuzzer (from the repository root):
 *   clang -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined \
 *     -D_POSIX_C_SOURCE=200809L -Irpc/include -Igen -Iservices/common/include \
 *     -Iservices/auth -Itests/fuzz tests/fuzz/fuzz_auth_jwt.c \
 *     services/auth/jwt.c services/auth/crypto.c services/common/src/log.c \
 *     services/common/src/ids.c services/common/src/jwt.c \
 *     services/common/src/base64.c rpc/src/rpc_status.c \
 *     -lssl -lcrypto -lpthread \
 *     -o build-fuzz/fuzz_auth_jwt
 *   build-fuzz/fuzz_auth_jwt tests/fuzz/corpus/fuzz_auth_jwt
 * Replay (any compiler): the same with -DFUZZ_STANDALONE instead of
 * -fsanitize=fuzzer, then run it on the files of tests/fuzz/corpus/fuzz_auth_jwt (make fuzz and make test do both).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "auth_jwt.h"
#include "fuzz_main.h"
#include "panthera/base64.h"
#include "panthera/log.h"

static auth_keyring *ring;
static EVP_PKEY *signer;
static char header[128];

static rpc_status first_kid(const char *kid, const char *x, void *arg)
{
	(void)x;
	snprintf(arg, AUTH_KID_LEN + 1, "%s", kid);
	return RPC_STATUS_CANCELLED; /* only the newest */
}

/* Remove the keyring's folder once its key is in memory: <dir>/keys/ (the
 * key files and the lock file), then <dir>. */
static void remove_key_folder(const char *dir)
{
	char keys[256], path[512];
	snprintf(keys, sizeof(keys), "%s/keys", dir);
	DIR *d = opendir(keys);
	if (d != NULL) {
		for (struct dirent *e; (e = readdir(d)) != NULL;)
			if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
				snprintf(path, sizeof(path), "%s/%s", keys, e->d_name);
				unlink(path);
			}
		closedir(d);
	}
	rmdir(keys);
	rmdir(dir);
}

static int start(void)
{
	static char dir[] = "/tmp/panthera-fuzz-jwt-XXXXXX";
	log_set_level(LOG_ERROR);
	if (mkdtemp(dir) == NULL || auth_keyring_load(&ring, dir) != RPC_STATUS_OK)
		return -1;
	char kid[AUTH_KID_LEN + 1] = "", path[256];
	auth_keyring_each(ring, first_kid, kid);
	snprintf(path, sizeof(path), "%s/keys/%s.pem", dir, kid);
	snprintf(header, sizeof(header), "{\"alg\":\"EdDSA\",\"typ\":\"JWT\",\"kid\":\"%s\"}", kid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -1;
	signer = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	remove_key_folder(dir);
	return signer ? 0 : -1;
}

/* header.claims.signature with the ring's header and key. */
static char *sign(const char *claims, size_t cn)
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
	uint8_t sig[64];
	size_t sn = sizeof(sig);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int ok = md != NULL && EVP_DigestSignInit(md, NULL, NULL, NULL, signer) == 1 &&
	         EVP_DigestSign(md, sig, &sn, (const uint8_t *)out, o) == 1;
	EVP_MD_CTX_free(md);
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (ring == NULL && start() != 0)
		abort(); /* the harness itself is broken */
	if (size == 0 || size > 64 * 1024)
		return 0;
	char *token;
	if (data[0] & 1) {
		token = sign((const char *)data + 1, size - 1);
	} else {
		token = malloc(size);
		if (token != NULL) {
			memcpy(token, data + 1, size - 1);
			token[size - 1] = '\0';
		}
	}
	if (token == NULL)
		return 0;
	auth_claims claims;
	const char *why = NULL;
	auth_jwt_verify(ring, "panthera", token, 1700000000, &claims, &why);
	free(token);
	return 0;
}
