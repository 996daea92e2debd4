/*
 * rpc_cfg.h - the RPC transport settings of a process (config.c), applied:
 * TLS on a tls+tcp:// PANTHERA_RPC_URL and on the channels to tls+tcp://
 * services (PANTHERA_RPC_TLS_CERT, _KEY, _CA, _SERVER_NAME), and several
 * URLs per service setting (comma-separated, one per replica), over which a
 * channel spreads its calls. Shared by pantherad, the panthera-<service>
 * binaries and panthera-gateway.
 *
 * Thread-safety: call from the main thread at start; the channels are then
 * thread-safe as every rpc_channel.
 */
#ifndef PANTHERA_RPC_CFG_H
#define PANTHERA_RPC_CFG_H

#include <stddef.h>

#include "panthera/config.h"
#include "panthera/rpc.h"

/* URLs one setting may list. */
#define RPC_CFG_MAX_URLS 16

/*
 * Set the TLS fields of `so` for serving `listen_url`: for a tls+tcp:// URL
 * the certificate and key (both required) and, when PANTHERA_RPC_TLS_CA is
 * set, the CA callers' certificates must come from. The strings stay owned
 * by `c`. INVALID_ARGUMENT, with a sentence naming the settings in `err`,
 * when a tls+tcp:// URL lacks its certificate or key.
 */
rpc_status rpc_cfg_server_tls(const cfg *c, const char *listen_url, rpc_server_opts *so, char *err,
                              size_t errlen);

/*
 * Open a channel to the comma-separated URLs of `urls` (spaces around each
 * are ignored), with the TLS client settings for the tls+tcp:// ones and
 * the rest of `base` (NULL: the defaults; its TLS fields are ignored). On
 * error *out is NULL and `err` says why in one sentence: an empty element,
 * more than RPC_CFG_MAX_URLS, a tls+tcp:// URL without PANTHERA_RPC_TLS_CA,
 * or what rpc_channel_open refused.
 */
rpc_status rpc_cfg_dial(const cfg *c, const char *urls, const rpc_channel_opts *base,
                        rpc_channel **out, char *err, size_t errlen);

#endif
