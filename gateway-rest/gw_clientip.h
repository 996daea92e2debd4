/*
 * gw_clientip.h - the REST gateway's notion of "the client's address": IP
 * addresses, the list of trusted proxies, and the strict reading of
 * X-Forwarded-For that the rate limiter (gw_ratelimit.h) and the access
 * log rely on. Design notes: docs/gateway/limits.md.
 *
 * Addresses: a gw_ip holds 16 bytes in network order. IPv4 addresses are
 * stored in their IPv4-mapped form (::ffff:a.b.c.d), so an IPv4 peer and
 * the same address written "::ffff:a.b.c.d" (a dual-stack socket, a proxy)
 * are one address: that is the normalisation. Text and sockaddr are read
 * into that form; gw_ip_format() writes IPv4 as dotted quads.
 *
 * The client address of a request is its socket peer, unless the peer is a
 * trusted proxy: then it is the right-most address of X-Forwarded-For that
 * is not itself a trusted proxy. Right-most, because every proxy appends
 * the address it received the request from: the elements to the right of
 * the first untrusted one were written by proxies we trust, while that one
 * and everything to its left came from (or through) the client, who can
 * write anything there. Taking the left-most would let any client pick its
 * own address, and so its own rate-limit bucket.
 *
 * Only the part of the header that the right-to-left walk reaches is read,
 * and strictly (gw_clientip_resolve()); a malformed element there means a
 * trusted proxy wrote something we do not understand, and the peer is used.
 * Garbage a client put further left is never looked at, so a client cannot
 * force that fallback (which would put everyone behind the proxy into one
 * bucket).
 *
 * Memory: a gw_proxy_list is built once at start-up and is immutable; the
 * other functions allocate nothing.
 *
 * Thread-safety: gw_proxy_list_new() and gw_proxy_list_free() are the
 * caller's to order; every other function only reads its arguments and may
 * run on any number of threads at once.
 */
#ifndef PANTHERA_GW_CLIENTIP_H
#define PANTHERA_GW_CLIENTIP_H

#include <stddef.h>
#include <stdint.h>

#include <sys/socket.h>

#include "gw_http.h"
#include "panthera/rpc_status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bytes gw_ip_format() needs, its NUL included (INET6_ADDRSTRLEN). */
#define GW_IP_TEXT_MAX 46

/* Most entries a trusted-proxy list may hold. */
#define GW_PROXY_LIST_MAX 1024u

/* X-Forwarded-For elements (empty ones included) the walk reads at most,
 * right to left, before it gives up and uses the peer. */
#define GW_XFF_MAX_HOPS 32u

/* Bytes of one X-Forwarded-For element, surrounding spaces included. */
#define GW_XFF_MAX_ELEMENT 128u

/* An IPv4 or IPv6 address: IPv6 bytes in network order, IPv4 as
 * ::ffff:a.b.c.d. Compare with gw_ip_equal() or memcmp(). */
typedef struct gw_ip {
	uint8_t b[16];
} gw_ip;

/*
 * Read an address written alone: an IPv4 dotted quad (four decimal parts
 * 0..255, no leading zeros, no other forms such as "10.1" or hex) or an
 * IPv6 address in any RFC 4291 text form (without a zone "%eth0", without
 * brackets). s need not be NUL-terminated; no NUL may occur in s[0..len).
 * out: OUT, the address; unchanged on error.
 * Returns 0, or -1 when s is not exactly such an address.
 */
int gw_ip_parse(const char *s, size_t len, gw_ip *out);

/*
 * Read a socket address: AF_INET, or AF_INET6 (an IPv4-mapped one becomes
 * the IPv4 address; the scope id is dropped). sa_len is the size of the
 * buffer sa points to (socklen_t as accept() fills it).
 * Returns 0, or -1 (NULL, too short, another family such as AF_UNIX).
 */
int gw_ip_from_sockaddr(const struct sockaddr *sa, size_t sa_len, gw_ip *out);

/* 1 when ip is an IPv4 address (::ffff:0:0/96), else 0. */
int gw_ip_is_v4(const gw_ip *ip);

/* 1 when both addresses are the same, else 0. */
int gw_ip_equal(const gw_ip *a, const gw_ip *b);

/*
 * Write ip as text: a dotted quad for IPv4, RFC 5952 for IPv6. Truncates
 * to cap - 1 bytes and NUL-terminates when cap > 0; GW_IP_TEXT_MAX is
 * always enough. Returns the length of the whole text.
 */
size_t gw_ip_format(const gw_ip *ip, char *buf, size_t cap);

/* ---- trusted proxies ----------------------------------------------------- */

typedef struct gw_proxy_list gw_proxy_list;

/*
 * Parse a list of trusted proxies, once at start-up: comma-separated
 * entries, spaces and tabs around each, every entry an address (as
 * gw_ip_parse()) or a CIDR block "address/length" (0..32 for IPv4, 0..128
 * for IPv6) whose host bits are zero ("10.0.0.0/8", "fd00::/8"). An IPv4
 * block also covers the same addresses written IPv4-mapped. An empty or
 * all-blank spec gives an empty list (no proxy is trusted). Overlapping
 * entries are merged; lookups are one binary search.
 *
 * spec:  spec[0..len), need not be NUL-terminated; NULL when len is 0.
 * out:   OUT, the list, to free with gw_proxy_list_free(); NULL on error.
 * err:   OUT, on error a sentence naming the entry at fault; err_cap
 *        bytes, NUL-terminated; may be NULL when err_cap is 0.
 * Returns RPC_STATUS_OK, INVALID_ARGUMENT (a NULL out, an empty entry, an
 * entry that is no address or block, host bits set, more than
 * GW_PROXY_LIST_MAX entries) or RESOURCE_EXHAUSTED (out of memory).
 */
rpc_status gw_proxy_list_new(const char *spec, size_t len, gw_proxy_list **out, char *err,
                             size_t err_cap);

/* Free a list no thread uses any more. NULL is harmless. */
void gw_proxy_list_free(gw_proxy_list *l);

/* 1 when ip lies in one of the list's blocks, else 0 (and for a NULL
 * list). O(log n). */
int gw_proxy_list_contains(const gw_proxy_list *l, const gw_ip *ip);

/* Disjoint address ranges the list holds after merging (0 for NULL). */
size_t gw_proxy_list_ranges(const gw_proxy_list *l);

/* ---- the client address of a request ------------------------------------- */

/* Where gw_clientip_resolve() took the address from. */
typedef enum gw_clientip_source {
	/* The socket peer: it is not a trusted proxy, or it is one and the
	 * request has no X-Forwarded-For (or only empty elements). */
	GW_CLIENTIP_PEER = 0,
	/* X-Forwarded-For: the right-most untrusted address, or, when every
	 * element read is a trusted proxy, the left-most of them. */
	GW_CLIENTIP_FORWARDED = 1,
	/* The socket peer, a trusted proxy whose X-Forwarded-For could not be
	 * used: a malformed element (or one over GW_XFF_MAX_ELEMENT bytes)
	 * before an untrusted address was found, or more than
	 * GW_XFF_MAX_HOPS elements of trusted proxies. Worth a log line: a
	 * proxy is misconfigured. */
	GW_CLIENTIP_PEER_BAD_FORWARD = 2,
} gw_clientip_source;

/* The result of gw_clientip_resolve(). */
typedef struct gw_clientip {
	gw_ip addr;
	gw_clientip_source source;
} gw_clientip;

/*
 * The client address of a request from socket peer `peer` with header
 * fields headers[0..n_headers) (names in any case; every
 * X-Forwarded-For field is read, the last one first, as if they were one
 * field joined with commas in order, RFC 9110 section 5.3).
 *
 * An element is an address as gw_ip_parse() reads it, or one with a port:
 * "a.b.c.d:port", "[v6]" or "[v6]:port" (port: 1..5 digits, at most
 * 65535; dropped), with optional spaces and tabs around it. Empty
 * elements are skipped (RFC 9110 section 5.6.1). The `Forwarded` header
 * (RFC 7239) is not read.
 *
 * trusted: the trusted proxies; NULL or empty: the peer is always used.
 * headers: may be NULL when n_headers is 0.
 * out:     OUT, the address and where it came from.
 * Returns RPC_STATUS_OK, or INVALID_ARGUMENT for a NULL peer or out (out
 * is then untouched).
 */
rpc_status gw_clientip_resolve(const gw_proxy_list *trusted, const gw_ip *peer,
                               const gw_http_header *headers, size_t n_headers, gw_clientip *out);

/*
 * gw_clientip_resolve() for one X-Forwarded-For value xff[0..len) (all
 * fields already joined, or the only one); xff may be NULL when len is 0
 * (no header).
 */
rpc_status gw_clientip_from_xff(const gw_proxy_list *trusted, const gw_ip *peer, const char *xff,
                                size_t len, gw_clientip *out);

#ifdef __cplusplus
}
#endif

#endif /* PANTHERA_GW_CLIENTIP_H */
