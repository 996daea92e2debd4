/*
 * tls.c - certificates from PEM files for nng's tls+tcp:// transport.
 *
 * nng's own file loader wants the certificate and the key in one file; ours
 * come as two (the usual layout), so both are read here and handed over
 * from memory.
 */
#include "rpc_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/supplemental/tls/tls.h>

#define RPC_TLS_MAX_PEM (1u << 20)

/* The whole file, NUL-terminated, or NULL. */
static char *read_pem(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	char *buf = malloc(RPC_TLS_MAX_PEM + 1);
	size_t n = buf ? fread(buf, 1, RPC_TLS_MAX_PEM + 1, f) : 0;
	int bad = buf == NULL || ferror(f) || n > RPC_TLS_MAX_PEM;
	fclose(f);
	if (bad) {
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	return buf;
}

int rpc_tls_own_cert(struct nng_tls_config *cfg, const char *cert_file, const char *key_file)
{
	char *cert = read_pem(cert_file);
	char *key = read_pem(key_file);
	int rv = (cert == NULL || key == NULL) ? NNG_ENOENT
	                                       : nng_tls_config_own_cert(cfg, cert, key, NULL);
	if (key != NULL) {
		/* the key was in our memory: do not leave it lying around */
		memset(key, 0, strlen(key));
		free(key);
	}
	free(cert);
	return rv;
}
