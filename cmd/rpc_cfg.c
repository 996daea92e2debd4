/*
 * rpc_cfg.c - the RPC transport settings applied; see rpc_cfg.h.
 */
#include "rpc_cfg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int is_set(const char *v)
{
	return v != NULL && v[0] != '\0';
}

static int is_tls(const char *url)
{
	return strncmp(url, "tls+", 4) == 0;
}

rpc_status rpc_cfg_server_tls(const cfg *c, const char *listen_url, rpc_server_opts *so, char *err,
                              size_t errlen)
{
	if (listen_url == NULL || !is_tls(listen_url))
		return RPC_STATUS_OK;
	const char *cert = cfg_get(c, "rpc-tls-cert"), *key = cfg_get(c, "rpc-tls-key");
	if (!is_set(cert) || !is_set(key)) {
		snprintf(err, errlen,
		         "serving %s needs PANTHERA_RPC_TLS_CERT and PANTHERA_RPC_TLS_KEY "
		         "(--rpc-tls-cert, --rpc-tls-key)",
		         listen_url);
		return RPC_STATUS_INVALID_ARGUMENT;
	}
	so->tls_cert_file = cert;
	so->tls_key_file = key;
	const char *ca = cfg_get(c, "rpc-tls-ca");
	so->tls_client_ca_file = is_set(ca) ? ca : NULL;
	return RPC_STATUS_OK;
}

/* Split `list` at commas into copies in `urls`, trimmed of spaces; the
 * count, or -1 with `err` set. The copies are one allocation, *block. */
static long split_urls(const char *list, char **block, const char **urls, char *err, size_t errlen)
{
	char *copy = strdup(list);
	if (copy == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	long n = 0;
	for (char *item = copy, *next; item != NULL; item = next) {
		next = strchr(item, ',');
		if (next != NULL)
			*next++ = '\0';
		while (*item == ' ' || *item == '\t')
			item++;
		size_t len = strlen(item);
		while (len > 0 && (item[len - 1] == ' ' || item[len - 1] == '\t'))
			item[--len] = '\0';
		if (len == 0 || n == RPC_CFG_MAX_URLS) {
			if (len == 0)
				snprintf(err, errlen, "an empty URL in \"%s\"", list);
			else
				snprintf(err, errlen, "more than %d URLs in \"%s\"",
				         RPC_CFG_MAX_URLS, list);
			free(copy);
			return -1;
		}
		urls[n++] = item;
	}
	*block = copy;
	return n;
}

rpc_status rpc_cfg_dial(const cfg *c, const char *urls, const rpc_channel_opts *base,
                        rpc_channel **out, char *err, size_t errlen)
{
	*out = NULL;
	if (urls == NULL) {
		snprintf(err, errlen, "no URL");
		return RPC_STATUS_INVALID_ARGUMENT;
	}
	const char *list[RPC_CFG_MAX_URLS];
	char *block = NULL;
	long n = split_urls(urls, &block, list, err, errlen);
	if (n < 0)
		return RPC_STATUS_INVALID_ARGUMENT;
	rpc_channel_opts co = {0};
	if (base != NULL) {
		co.default_timeout_ms = base->default_timeout_ms;
		co.connect_wait_ms = base->connect_wait_ms;
		co.max_message = base->max_message;
	}
	const char *ca = cfg_get(c, "rpc-tls-ca");
	for (long i = 0; i < n; i++)
		if (is_tls(list[i]) && !is_set(ca)) {
			snprintf(err, errlen, "dialing %s needs PANTHERA_RPC_TLS_CA (--rpc-tls-ca)",
			         list[i]);
			free(block);
			return RPC_STATUS_INVALID_ARGUMENT;
		}
	if (is_set(ca)) {
		co.tls_ca_file = ca;
		const char *name = cfg_get(c, "rpc-tls-server-name");
		co.tls_server_name = is_set(name) ? name : NULL;
		const char *cert = cfg_get(c, "rpc-tls-cert"), *key = cfg_get(c, "rpc-tls-key");
		if (is_set(cert) && is_set(key)) {
			co.tls_cert_file = cert;
			co.tls_key_file = key;
		}
	}
	rpc_status st = rpc_channel_open(out, list, (size_t)n, &co);
	if (st != RPC_STATUS_OK)
		snprintf(err, errlen,
		         "cannot dial %s: %s (a URL nng does not take, or an unreadable "
		         "TLS file)",
		         urls, rpc_status_name(st));
	free(block);
	return st;
}
