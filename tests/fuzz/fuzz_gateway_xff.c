/*
 * fuzz_gateway_xff.c - libFuzzer target of the gateway's parsing of what a
 * client (or a proxy) says about where a request comes from
 * (gateway-rest/gw_clientip.c: addresses, trusted-proxy lists,
 * X-Forwarded-For) and of the CORS headers (gateway-rest/gw_cors.c:
 * Origin, Access-Control-Request-Method and -Headers).
 *
 * Input: '\n'-separated lines, used as they are (NUL, CR and all):
 *   0  a trusted-proxy list (gw_proxy_list_new());
 *   1  the peer address (gw_ip_parse(); "10.0.0.1" when it is none);
 *   2  an Origin;
 *   3  an Access-Control-Request-Method;
 *   4  Access-Control-Request-Headers;
 *   5… X-Forwarded-For field values, in order.
 * Each line is copied into a buffer of its own size so that ASan sees
 * overreads. Besides "no crash", the answers are checked against the
 * headers: an address read back from its text is the same address; the
 * peer is the answer whenever it is not a trusted proxy; a forwarded
 * address comes from the header and is the right-most untrusted one (or,
 * all trusted, a trusted one); several fields give what their join gives;
 * a normalised origin is a fixed point and is allowed by a policy that
 * lists it; a preflight answers 204 or 403 with a bounded header list.
 *
 * Build and run: tools/fuzz.sh (make fuzz); replayed by make test through
 * tests/fuzz/corpus.test.sh on tests/fuzz/corpus/fuzz_gateway_xff.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz_main.h"
#include "gw_clientip.h"
#include "gw_cors.h"
#include "gw_router.h"
#include "panthera_routes.h"

#define MAX_LINES 40

static char *copy(const uint8_t *p, size_t n)
{
	char *c = malloc(n > 0 ? n : 1);
	if (c != NULL && n > 0)
		memcpy(c, p, n);
	return c;
}

/* An address's text reads back as the same address. */
static void check_round_trip(const gw_ip *ip)
{
	char text[GW_IP_TEXT_MAX];
	size_t n = gw_ip_format(ip, text, sizeof(text));
	if (n == 0 || n >= sizeof(text))
		abort();
	gw_ip back;
	if (gw_ip_parse(text, n, &back) != 0 || !gw_ip_equal(ip, &back))
		abort();
}

static void check_client(const gw_proxy_list *trusted, const gw_ip *peer, char **xff,
                         const size_t *len, size_t n)
{
	gw_http_header h[MAX_LINES];
	for (size_t i = 0; i < n; i++) {
		h[i].name = (i % 2) ? "x-forwarded-for" : "X-Forwarded-For";
		h[i].name_len = 15;
		h[i].value = xff[i];
		h[i].value_len = len[i];
	}
	gw_clientip c;
	if (gw_clientip_resolve(trusted, peer, h, n, &c) != RPC_STATUS_OK)
		abort();
	check_round_trip(&c.addr);
	int peer_trusted = gw_proxy_list_contains(trusted, peer);
	if (!peer_trusted && (c.source != GW_CLIENTIP_PEER || !gw_ip_equal(&c.addr, peer)))
		abort();
	if (c.source != GW_CLIENTIP_FORWARDED && !gw_ip_equal(&c.addr, peer))
		abort();
	if (c.source == GW_CLIENTIP_FORWARDED && !peer_trusted)
		abort();

	/* The fields joined with ", " give the same answer. */
	size_t total = 0;
	for (size_t i = 0; i < n; i++)
		total += len[i] + 2;
	char *joined = malloc(total > 0 ? total : 1);
	if (joined == NULL)
		return;
	size_t at = 0;
	for (size_t i = 0; i < n; i++) {
		if (i > 0) {
			joined[at++] = ',';
			joined[at++] = ' ';
		}
		if (len[i] > 0)
			memcpy(joined + at, xff[i], len[i]);
		at += len[i];
	}
	gw_clientip j;
	if (gw_clientip_from_xff(trusted, peer, n > 0 ? joined : NULL, at, &j) != RPC_STATUS_OK)
		abort();
	/* Joining can only differ when the walk gave up on its bounds (the
	 * separators add bytes and count as elements only when empty). */
	if (c.source != GW_CLIENTIP_PEER_BAD_FORWARD && j.source != GW_CLIENTIP_PEER_BAD_FORWARD &&
	    (c.source != j.source || !gw_ip_equal(&c.addr, &j.addr)))
		abort();
	free(joined);
}

static void check_origin(const gw_router *router, const char *origin, size_t olen,
                         const char *method, size_t mlen, const char *acrh, size_t hlen)
{
	char norm[GW_CORS_ORIGIN_MAX + 1];
	int n = gw_cors_origin_normalize(origin, olen, norm, sizeof(norm));
	if (n >= 0) {
		if ((size_t)n != strlen(norm) || (size_t)n > GW_CORS_ORIGIN_MAX)
			abort();
		char again[GW_CORS_ORIGIN_MAX + 1];
		int m = gw_cors_origin_normalize(norm, (size_t)n, again, sizeof(again));
		if (m != n || memcmp(norm, again, (size_t)n) != 0)
			abort();
		for (int i = 0; i < n; i++)
			if (norm[i] >= 'A' && norm[i] <= 'Z')
				abort();
		/* A policy listing it allows the origin as sent. */
		gw_cors_opts o = {norm, 0, 0};
		gw_cors *c = NULL;
		if (gw_cors_new(&o, &c, NULL, 0) != RPC_STATUS_OK)
			abort();
		if (!gw_cors_origin_allowed(c, origin, olen))
			abort();
		gw_cors_free(c);
	}

	static const char *const specs[] = {"", "*", "https://shop.example, http://[::1]:3000"};
	for (size_t s = 0; s < 3; s++) {
		gw_cors_opts o = {specs[s], 0, 0};
		gw_cors *c = NULL;
		if (gw_cors_new(&o, &c, NULL, 0) != RPC_STATUS_OK)
			abort();
		gw_http_header out[GW_CORS_MAX_HEADERS];
		size_t k = gw_cors_response_headers(c, origin, olen, out);
		if (k > GW_CORS_MAX_HEADERS)
			abort();
		if (router != NULL) {
			static const char *const paths[] = {"/v1/products/x", "/v1/orders",
			                                    "/v1/cart"};
			const char *path = paths[olen % 3];
			uint32_t allowed = 0;
			gw_http_result res;
			if (gw_router_allowed(router, path, strlen(path), &allowed, &res) != 0)
				abort();
			gw_cors_preflight_req req = {origin, olen, method, mlen, acrh, hlen};
			gw_cors_buf buf;
			size_t nout = 0;
			int st =
			    gw_cors_preflight(c, router, allowed, &req, &buf, out, &nout, &res);
			if ((st != 204 && st != 403) || nout > GW_CORS_MAX_HEADERS)
				abort();
			if (st == 403 && (res.reason == NULL || res.status != 403))
				abort();
			if (st == 204 && (s == 0 || !gw_cors_origin_allowed(c, origin, olen)))
				abort();
		}
		gw_cors_free(c);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static gw_router *router;
	static int router_tried;
	if (!router_tried) {
		router_tried = 1;
		if (gw_router_new(&panthera_routes, &router, NULL, 0) != RPC_STATUS_OK)
			router = NULL;
	}
	if (size > 65536)
		return 0;

	char *line[MAX_LINES];
	size_t len[MAX_LINES], n = 0;
	for (size_t i = 0; i <= size && n < MAX_LINES;) {
		const uint8_t *nl = i < size ? memchr(data + i, '\n', size - i) : NULL;
		size_t l = nl != NULL ? (size_t)(nl - (data + i)) : size - i;
		line[n] = copy(data + i, l);
		if (line[n] == NULL)
			goto out;
		len[n++] = l;
		i += l + 1;
	}
	while (n < 5) {
		line[n] = copy((const uint8_t *)"", 0);
		if (line[n] == NULL)
			goto out;
		len[n++] = 0;
	}

	gw_proxy_list *trusted = NULL;
	char err[128];
	if (gw_proxy_list_new(line[0], len[0], &trusted, err, sizeof(err)) != RPC_STATUS_OK)
		trusted = NULL;
	gw_ip peer;
	if (gw_ip_parse(line[1], len[1], &peer) == 0)
		check_round_trip(&peer);
	else if (gw_ip_parse("10.0.0.1", 8, &peer) != 0)
		abort();
	/* Every line is also tried as an address and an element. */
	for (size_t i = 0; i < n; i++) {
		gw_ip ip;
		if (gw_ip_parse(line[i], len[i], &ip) == 0) {
			check_round_trip(&ip);
			/* A trusted list of that one address holds it. */
			gw_proxy_list *one = NULL;
			if (gw_proxy_list_new(line[i], len[i], &one, NULL, 0) == RPC_STATUS_OK &&
			    !gw_proxy_list_contains(one, &ip))
				abort();
			gw_proxy_list_free(one);
		}
	}
	check_client(trusted, &peer, line + 5, len + 5, n - 5);
	/* With the peer trusted whatever the list said. */
	gw_proxy_list *all = NULL;
	if (gw_proxy_list_new("0.0.0.0/0, ::/0", 15, &all, NULL, 0) != RPC_STATUS_OK)
		abort();
	check_client(all, &peer, line + 5, len + 5, n - 5);
	gw_proxy_list_free(all);
	gw_proxy_list_free(trusted);

	check_origin(router, line[2], len[2], line[3], len[3], line[4], len[4]);
out:
	for (size_t i = 0; i < n; i++)
		free(line[i]);
	return 0;
}
