/*
 * gw_clientip.c - IP addresses as the gateway keys them, the trusted-proxy
 * list, and the right-to-left walk of X-Forwarded-For; see gw_clientip.h.
 *
 * The proxy list is kept as disjoint [lo, hi] ranges of the 128-bit
 * address space (IPv4 in its mapped form), sorted, so that a lookup is a
 * single binary search whatever mix of prefix lengths was configured.
 */
#include "gw_clientip.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const uint8_t v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* ---- addresses ------------------------------------------------------------ */

/* Four decimal parts 0..255, one to three digits, no leading zero. */
static int parse_v4(const char *s, size_t len, uint8_t out[4])
{
	size_t i = 0;
	for (int part = 0; part < 4; part++) {
		if (part > 0) {
			if (i >= len || s[i] != '.')
				return -1;
			i++;
		}
		size_t start = i;
		unsigned v = 0;
		while (i < len && i - start < 3 && s[i] >= '0' && s[i] <= '9') {
			v = v * 10 + (unsigned)(s[i] - '0');
			i++;
		}
		if (i == start || v > 255 || (s[start] == '0' && i - start > 1))
			return -1;
		out[part] = (uint8_t)v;
	}
	return i == len ? 0 : -1;
}

/* An IPv6 text form: only hex digits, ':' and '.' (for a trailing IPv4
 * part) reach inet_pton(), so no NUL can cut the text short and no zone or
 * other suffix slips through. */
static int parse_v6(const char *s, size_t len, uint8_t out[16])
{
	char buf[GW_IP_TEXT_MAX];
	if (len < 2 || len >= sizeof(buf))
		return -1;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		int ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
		         (c >= 'A' && c <= 'F') || c == ':' || c == '.';
		if (!ok)
			return -1;
	}
	memcpy(buf, s, len);
	buf[len] = '\0';
	return inet_pton(AF_INET6, buf, out) == 1 ? 0 : -1;
}

int gw_ip_parse(const char *s, size_t len, gw_ip *out)
{
	if (s == NULL || out == NULL || len == 0)
		return -1;
	gw_ip ip;
	if (memchr(s, ':', len) != NULL) {
		if (parse_v6(s, len, ip.b) != 0)
			return -1;
	} else {
		memcpy(ip.b, v4_mapped_prefix, sizeof(v4_mapped_prefix));
		if (parse_v4(s, len, ip.b + 12) != 0)
			return -1;
	}
	*out = ip;
	return 0;
}

int gw_ip_from_sockaddr(const struct sockaddr *sa, size_t sa_len, gw_ip *out)
{
	if (sa == NULL || out == NULL || sa_len < sizeof(struct sockaddr_in))
		return -1;
	sa_family_t family;
	memcpy(&family, (const char *)sa + offsetof(struct sockaddr, sa_family), sizeof(family));
	if (family == AF_INET) {
		struct sockaddr_in in4;
		memcpy(&in4, sa, sizeof(in4));
		memcpy(out->b, v4_mapped_prefix, sizeof(v4_mapped_prefix));
		memcpy(out->b + 12, &in4.sin_addr.s_addr, 4);
		return 0;
	}
	if (family == AF_INET6 && sa_len >= sizeof(struct sockaddr_in6)) {
		struct sockaddr_in6 in6;
		memcpy(&in6, sa, sizeof(in6));
		/* An IPv4-mapped address already is our IPv4 form. */
		memcpy(out->b, in6.sin6_addr.s6_addr, 16);
		return 0;
	}
	return -1;
}

int gw_ip_is_v4(const gw_ip *ip)
{
	return ip != NULL && memcmp(ip->b, v4_mapped_prefix, sizeof(v4_mapped_prefix)) == 0;
}

int gw_ip_equal(const gw_ip *a, const gw_ip *b)
{
	return a != NULL && b != NULL && memcmp(a->b, b->b, 16) == 0;
}

size_t gw_ip_format(const gw_ip *ip, char *buf, size_t cap)
{
	char text[GW_IP_TEXT_MAX];
	size_t n;
	if (ip == NULL) {
		text[0] = '\0';
	} else if (gw_ip_is_v4(ip)) {
		snprintf(text, sizeof(text), "%u.%u.%u.%u", ip->b[12], ip->b[13], ip->b[14],
		         ip->b[15]);
	} else if (inet_ntop(AF_INET6, ip->b, text, sizeof(text)) == NULL) {
		text[0] = '\0'; /* cannot happen with a large enough buffer */
	}
	n = strlen(text);
	if (cap > 0) {
		size_t c = n < cap - 1 ? n : cap - 1;
		memcpy(buf, text, c);
		buf[c] = '\0';
	}
	return n;
}

/* ---- trusted proxies ------------------------------------------------------- */

typedef struct ip_range {
	gw_ip lo, hi;
} ip_range;

struct gw_proxy_list {
	size_t n;
	ip_range ranges[]; /* sorted by lo, disjoint */
};

static int is_ows(char c)
{
	return c == ' ' || c == '\t';
}

static void set_err(char *err, size_t err_cap, const char *fmt, const char *entry, size_t len,
                    size_t index)
{
	if (err == NULL || err_cap == 0)
		return;
	/* The entry as given, cut short and without bytes that would garble a
	 * log line. */
	char shown[48];
	size_t n = 0;
	for (size_t i = 0; i < len && n + 1 < sizeof(shown); i++)
		shown[n++] = entry[i] >= 0x20 && entry[i] < 0x7f ? entry[i] : '?';
	shown[n] = '\0';
	snprintf(err, err_cap, fmt, index + 1, shown);
}

/* Digits of a prefix length: 1..3 of them, no leading zero. */
static int parse_prefix_len(const char *s, size_t len, unsigned *out)
{
	if (len == 0 || len > 3 || (s[0] == '0' && len > 1))
		return -1;
	unsigned v = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	*out = v;
	return 0;
}

/* One entry "addr" or "addr/len" into a range; -1 not an entry, -2 host
 * bits set. */
static int parse_entry(const char *s, size_t len, ip_range *r)
{
	const char *slash = memchr(s, '/', len);
	size_t alen = slash != NULL ? (size_t)(slash - s) : len;
	gw_ip ip;
	if (gw_ip_parse(s, alen, &ip) != 0)
		return -1;
	unsigned bits = 128;
	if (slash != NULL) {
		unsigned l;
		if (parse_prefix_len(slash + 1, len - alen - 1, &l) != 0)
			return -1;
		/* An IPv4 block written as such; "::ffff:a.b.c.d/len" is IPv6
		 * notation and takes an IPv6 length. */
		int v4_text = memchr(s, ':', alen) == NULL;
		if (v4_text ? l > 32 : l > 128)
			return -1;
		bits = v4_text ? 96 + l : l;
	}
	r->lo = ip;
	r->hi = ip;
	for (unsigned i = 0; i < 16; i++) {
		unsigned keep = bits >= 8 * (i + 1) ? 8 : (bits > 8 * i ? bits - 8 * i : 0);
		uint8_t host = (uint8_t)(0xffu >> keep);
		if (ip.b[i] & host)
			return -2;
		r->hi.b[i] |= host;
	}
	return 0;
}

static int range_cmp(const void *a, const void *b)
{
	return memcmp(((const ip_range *)a)->lo.b, ((const ip_range *)b)->lo.b, 16);
}

rpc_status gw_proxy_list_new(const char *spec, size_t len, gw_proxy_list **out, char *err,
                             size_t err_cap)
{
	if (err != NULL && err_cap > 0)
		err[0] = '\0';
	if (out == NULL || (spec == NULL && len > 0)) {
		if (err != NULL && err_cap > 0)
			snprintf(err, err_cap, "trusted proxies: NULL argument");
		return RPC_STATUS_INVALID_ARGUMENT;
	}
	*out = NULL;
	size_t blank = 0;
	while (blank < len && is_ows(spec[blank]))
		blank++;
	size_t entries = blank == len ? 0 : 1;
	for (size_t i = 0; i < len; i++)
		entries += spec[i] == ',';
	if (entries > GW_PROXY_LIST_MAX) {
		if (err != NULL && err_cap > 0)
			snprintf(err, err_cap, "trusted proxies: more than %u entries",
			         GW_PROXY_LIST_MAX);
		return RPC_STATUS_INVALID_ARGUMENT;
	}
	gw_proxy_list *l = malloc(sizeof(*l) + entries * sizeof(ip_range));
	if (l == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	l->n = 0;
	for (size_t at = 0, index = 0; entries > 0 && at <= len; index++) {
		const char *comma = memchr(spec + at, ',', len - at);
		size_t end = comma != NULL ? (size_t)(comma - spec) : len;
		size_t a = at, b = end;
		while (a < b && is_ows(spec[a]))
			a++;
		while (b > a && is_ows(spec[b - 1]))
			b--;
		int rc = a < b ? parse_entry(spec + a, b - a, &l->ranges[l->n]) : -1;
		if (rc != 0) {
			set_err(err, err_cap,
			        rc == -2
			            ? "trusted proxies: entry %zu \"%s\" has host bits set "
			              "(write the block's first address)"
			            : "trusted proxies: entry %zu \"%s\" is not an IP address or "
			              "CIDR block",
			        spec + a, b - a, index);
			free(l);
			return RPC_STATUS_INVALID_ARGUMENT;
		}
		l->n++;
		at = end + 1;
	}
	if (l->n > 1) {
		qsort(l->ranges, l->n, sizeof(ip_range), range_cmp);
		size_t w = 0;
		for (size_t i = 1; i < l->n; i++) {
			if (memcmp(l->ranges[i].lo.b, l->ranges[w].hi.b, 16) <= 0) {
				if (memcmp(l->ranges[i].hi.b, l->ranges[w].hi.b, 16) > 0)
					l->ranges[w].hi = l->ranges[i].hi;
			} else {
				l->ranges[++w] = l->ranges[i];
			}
		}
		l->n = w + 1;
	}
	*out = l;
	return RPC_STATUS_OK;
}

void gw_proxy_list_free(gw_proxy_list *l)
{
	free(l);
}

int gw_proxy_list_contains(const gw_proxy_list *l, const gw_ip *ip)
{
	if (l == NULL || ip == NULL || l->n == 0)
		return 0;
	/* The last range whose lo <= ip. */
	size_t lo = 0, hi = l->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (memcmp(l->ranges[mid].lo.b, ip->b, 16) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo > 0 && memcmp(ip->b, l->ranges[lo - 1].hi.b, 16) <= 0;
}

size_t gw_proxy_list_ranges(const gw_proxy_list *l)
{
	return l != NULL ? l->n : 0;
}

/* ---- X-Forwarded-For ------------------------------------------------------- */

/* A port after an address: 1..5 digits, at most 65535. */
static int valid_port(const char *s, size_t len)
{
	if (len == 0 || len > 5)
		return 0;
	unsigned v = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	return v <= 65535;
}

/* One element, spaces already trimmed: "v4", "v4:port", "v6", "[v6]",
 * "[v6]:port". */
static int parse_hop(const char *s, size_t len, gw_ip *out)
{
	if (s[0] == '[') {
		const char *close = memchr(s, ']', len);
		if (close == NULL)
			return -1;
		size_t in = (size_t)(close - s) - 1;
		size_t rest = len - in - 2;
		if (memchr(s + 1, ':', in) == NULL || parse_v6(s + 1, in, out->b) != 0)
			return -1;
		if (rest == 0)
			return 0;
		return close[1] == ':' && valid_port(close + 2, rest - 1) ? 0 : -1;
	}
	const char *colon = memchr(s, ':', len);
	if (colon != NULL && memchr(colon + 1, ':', len - (size_t)(colon - s) - 1) == NULL) {
		/* Exactly one colon: an IPv4 address and its port. */
		size_t alen = (size_t)(colon - s);
		if (!valid_port(colon + 1, len - alen - 1))
			return -1;
		memcpy(out->b, v4_mapped_prefix, sizeof(v4_mapped_prefix));
		return parse_v4(s, alen, out->b + 12);
	}
	return gw_ip_parse(s, len, out);
}

typedef struct xff_walk {
	const gw_proxy_list *trusted;
	unsigned hops;
	int have_trusted; /* an element was read, every one a trusted proxy */
	gw_ip leftmost_trusted;
} xff_walk;

enum { WALK_MORE, WALK_FOUND, WALK_BAD };

/* Walk one field value right to left; WALK_FOUND with *found the first
 * untrusted address, WALK_MORE when the value holds none, WALK_BAD. */
static int walk_value(xff_walk *w, const char *v, size_t len, gw_ip *found)
{
	if (v == NULL && len > 0)
		return WALK_BAD;
	size_t end = len;
	for (;;) {
		size_t start = end;
		while (start > 0 && v[start - 1] != ',') {
			start--;
			if (end - start > GW_XFF_MAX_ELEMENT)
				return WALK_BAD;
		}
		if (++w->hops > GW_XFF_MAX_HOPS)
			return WALK_BAD;
		size_t a = start, b = end;
		while (a < b && is_ows(v[a]))
			a++;
		while (b > a && is_ows(v[b - 1]))
			b--;
		if (a < b) {
			gw_ip ip;
			if (parse_hop(v + a, b - a, &ip) != 0)
				return WALK_BAD;
			if (!gw_proxy_list_contains(w->trusted, &ip)) {
				*found = ip;
				return WALK_FOUND;
			}
			w->leftmost_trusted = ip;
			w->have_trusted = 1;
		}
		if (start == 0)
			return WALK_MORE;
		end = start - 1; /* before the comma */
	}
}

static int is_xff_name(const gw_http_header *h)
{
	return h->name != NULL && h->name_len == 15 &&
	       strncasecmp(h->name, "x-forwarded-for", 15) == 0;
}

/* The walk over the X-Forwarded-For fields of headers[0..n_headers), last
 * first; or, when headers is NULL, over the one value one[0..one_len). */
static void resolve(const gw_proxy_list *trusted, const gw_ip *peer, const gw_http_header *headers,
                    size_t n_headers, const char *one, size_t one_len, gw_clientip *out)
{
	out->addr = *peer;
	out->source = GW_CLIENTIP_PEER;
	if (!gw_proxy_list_contains(trusted, peer))
		return;
	xff_walk w = {trusted, 0, 0, {{0}}};
	gw_ip found;
	int r = WALK_MORE;
	if (headers == NULL) {
		if (one != NULL)
			r = walk_value(&w, one, one_len, &found);
	} else {
		for (size_t i = n_headers; i-- > 0 && r == WALK_MORE;)
			if (is_xff_name(&headers[i]))
				r = walk_value(&w, headers[i].value, headers[i].value_len, &found);
	}
	if (r == WALK_FOUND) {
		out->addr = found;
		out->source = GW_CLIENTIP_FORWARDED;
	} else if (r == WALK_BAD) {
		out->source = GW_CLIENTIP_PEER_BAD_FORWARD;
	} else if (w.have_trusted) {
		out->addr = w.leftmost_trusted;
		out->source = GW_CLIENTIP_FORWARDED;
	}
}

rpc_status gw_clientip_resolve(const gw_proxy_list *trusted, const gw_ip *peer,
                               const gw_http_header *headers, size_t n_headers, gw_clientip *out)
{
	if (peer == NULL || out == NULL)
		return RPC_STATUS_INVALID_ARGUMENT;
	if (headers == NULL || n_headers == 0) {
		/* No field at all: not even an empty value to walk. */
		resolve(trusted, peer, NULL, 0, NULL, 0, out);
		return RPC_STATUS_OK;
	}
	resolve(trusted, peer, headers, n_headers, NULL, 0, out);
	return RPC_STATUS_OK;
}

rpc_status gw_clientip_from_xff(const gw_proxy_list *trusted, const gw_ip *peer, const char *xff,
                                size_t len, gw_clientip *out)
{
	if (peer == NULL || out == NULL || (xff == NULL && len > 0))
		return RPC_STATUS_INVALID_ARGUMENT;
	resolve(trusted, peer, NULL, 0, xff, len, out);
	return RPC_STATUS_OK;
}
