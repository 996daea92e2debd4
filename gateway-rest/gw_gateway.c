/*
 * gw_gateway.c - the request pipeline; see gw_gateway.h.
 */
#include "gw_gateway.h"

#include <openssl/rand.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arena.h"
#include "gw_cache.h"
#include "gw_http.h"
#include "gw_json.h"
#include "gw_reqid.h"
#include "gw_router.h"
#include "grpc/health/v1/health.panthera.h"
#include "panthera/log.h"

#define GW_DEFAULT_RPC_TIMEOUT_MS 10000u
#define GW_MAX_METADATA           (GW_CALLER_MD_MAX + GW_REQID_MD_MAX + 1)
#define GW_JSON_REPLY_MAX         (8u << 20)
#define GW_CALL_HEADERS           (GW_CORS_MAX_HEADERS + GW_RATELIMIT_MAX_HEADERS)

struct gw_gateway {
	gw_router *router;
	gw_json_schema *schema;
	rpc_channel *channel;
	/* per route (table index) and per service of the table: its channel */
	rpc_channel **route_ch, **service_ch;
	gw_auth *auth;
	gw_jwks_refresher *refresher;
	uint32_t rpc_timeout_ms;
	char *openapi;
	size_t openapi_len;
	gw_ratelimit *ratelimit;
	gw_cors *cors;
	gw_proxy_list *trusted;
	gw_metrics *metrics;
	gw_access_log *access_log;
	/* per route (table index): its rate-limit class */
	unsigned char *rl_class;
	gw_cache *cache;
	/* per route (table index): GW_CACHE_ROLE_*, with a cache */
	unsigned char *cache_role;
};

/* What a route does with the response cache. */
enum {
	GW_CACHE_ROLE_NONE = 0,  /* neither */
	GW_CACHE_ROLE_STORE = 1, /* a cacheable GET: answered from it, stored in it */
	GW_CACHE_ROLE_WRITE = 2, /* a write that changes what a cacheable GET shows */
};

/* What a request carries from the handler to its RPC's completion. */
typedef struct gw_call {
	gw_gateway *g;
	gw_request *req;
	const rpc_http_route *route;
	char request_id[GW_REQUEST_ID_MAX + 1];
	/* what every answer to it carries: CORS and RateLimit-* fields */
	gw_header extra[GW_CALL_HEADERS];
	size_t n_extra;
	gw_ratelimit_header_buf rl_values;
	/* for the metrics and the access log */
	struct timespec started, started_wall;
	size_t slot;
	const char *builtin;      /* the pipeline's own path answered, or NULL */
	const char *user_id;      /* the caller, once verified */
	const char *content_type; /* NULL: JSON */
	/* the response cache: the key and tags of a cacheable GET (stored on
	 * a 200 unless invalidated since `cache_ticket`), or the tags a write
	 * invalidates once it succeeded; NULL: nothing to do */
	const unsigned char *cache_key;
	size_t cache_key_len;
	gw_cache_tags *cache_tags;
	uint64_t cache_ticket;
} gw_call;

static const gw_header json_type = {"content-type", 12, "application/json", 16};

/* ---- answers ------------------------------------------------------------- */

/* Send `body` with `status`, Content-Type JSON (when there is a body),
 * X-Request-Id, the call's CORS and RateLimit-* fields, and `more`. */
/* Count the answer and write its access-log line. */
static void observe(gw_call *call, int status, size_t len)
{
	gw_gateway *g = call->g;
	if (g->metrics == NULL && g->access_log == NULL)
		return;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	int64_t ns = (int64_t)(now.tv_sec - call->started.tv_sec) * 1000000000 +
	             (now.tv_nsec - call->started.tv_nsec);
	uint64_t dur = ns > 0 ? (uint64_t)ns : 0;
	unsigned shard = gw_request_loop(call->req);
	if (g->metrics != NULL)
		gw_metrics_request_end(g->metrics, shard, call->slot, status, dur);
	if (g->access_log == NULL)
		return;
	size_t mlen, blen;
	socklen_t plen;
	char addr[GW_ACCESS_ADDR_MAX];
	const struct sockaddr *peer = gw_request_peer(call->req, &plen);
	gw_access_format_addr(peer, plen, addr);
	gw_request_body(call->req, &blen);
	gw_access_entry e = {.start_sec = call->started_wall.tv_sec,
	                     .start_nsec = call->started_wall.tv_nsec,
	                     .method = gw_request_method(call->req, &mlen),
	                     .route = call->route ? call->route->path_template : call->builtin,
	                     .status = status,
	                     .duration_ns = dur,
	                     .request_id = call->request_id,
	                     .user_id = call->user_id,
	                     .bytes_in = blen,
	                     .bytes_out = len,
	                     .client = addr};
	gw_access_log_write(g->access_log, &e);
}

static void send_reply(gw_call *call, int status, const char *body, size_t len,
                       const gw_header *more, size_t n_more)
{
	gw_header h[2 + GW_CALL_HEADERS + 2];
	size_t n = 0;
	observe(call, status, len);
	if (len > 0)
		h[n++] = call->content_type == NULL
		             ? json_type
		             : (gw_header){"content-type", 12, call->content_type,
		                           strlen(call->content_type)};
	h[n++] = (gw_header){"x-request-id", 12, call->request_id, strlen(call->request_id)};
	for (size_t i = 0; i < call->n_extra; i++)
		h[n++] = call->extra[i];
	for (size_t i = 0; i < n_more && n < sizeof(h) / sizeof(h[0]); i++)
		h[n++] = more[i];
	gw_respond(call->req, status, h, n, body, len);
}

/* Answer an error of the gateway's own (no RPC status of its own). */
static void send_error(gw_call *call, int http_status, rpc_status code, const char *reason,
                       const char *message, const gw_header *more, size_t n_more)
{
	gw_json_buf b;
	gw_json_buf_init(&b, 0);
	gw_json_error_reply e = {
	    .http_status = http_status, .code = code, .message = message, .reason = reason};
	if (gw_json_write_error(&b, &e) != RPC_STATUS_OK) {
		gw_json_buf_free(&b);
		send_reply(call, 500, NULL, 0, NULL, 0);
		return;
	}
	send_reply(call, http_status, b.data, b.len, more, n_more);
	gw_json_buf_free(&b);
}

static void send_result(gw_call *call, const gw_http_result *res)
{
	send_error(call, res->status, res->code, res->reason, res->message, NULL, 0);
}

/* gw_http_header and gw_header have the same members. */
static size_t add_fields(gw_header *to, size_t at, size_t cap, const gw_http_header *from, size_t n)
{
	for (size_t i = 0; i < n && at < cap; i++)
		to[at++] =
		    (gw_header){from[i].name, from[i].name_len, from[i].value, from[i].value_len};
	return at;
}

size_t gw_gateway_error_body(int status, const char *reason, const char *message, char *buf,
                             size_t cap, void *arg)
{
	(void)arg;
	rpc_status code = status == 413 || status == 431 ? RPC_STATUS_RESOURCE_EXHAUSTED
	                  : status == 503                ? RPC_STATUS_UNAVAILABLE
	                  : status >= 500                ? RPC_STATUS_INTERNAL
	                                                 : RPC_STATUS_INVALID_ARGUMENT;
	gw_json_buf b;
	gw_json_buf_init(&b, cap);
	gw_json_error_reply e = {
	    .http_status = status, .code = code, .message = message, .reason = reason};
	size_t n = cap + 1; /* "failed" to the server */
	if (gw_json_write_error(&b, &e) == RPC_STATUS_OK && b.len <= cap) {
		memcpy(buf, b.data, b.len);
		n = b.len;
	}
	gw_json_buf_free(&b);
	return n;
}

/* ---- request ids ----------------------------------------------------------- */

/* The client's X-Request-Id when sane (gw_reqid.h), else a new one. */
static void request_id(gw_request *req, char out[GW_REQUEST_ID_MAX + 1])
{
	const gw_header *h = gw_request_find_header(req, "x-request-id", 12, NULL);
	gw_request_id(h ? h->value : NULL, h ? h->value_len : 0, out, NULL);
}

/* ---- the RPC's completion -------------------------------------------------- */

/* A successful reply: on GET, with its ETag (`etag`, or computed here when
 * NULL; 304 when If-None-Match has it); always with Cache-Control ("public,
 * max-age=<max_age>" on cacheable routes, else "no-store", "private,
 * no-store" for a caller with a token). */
static void send_success(gw_call *call, int status, const char *body, size_t len,
                         const char *etag_in, uint32_t max_age)
{
	char etag[GW_ETAG_LEN + 1], cc[GW_CACHE_CONTROL_MAX];
	gw_header h[2];
	size_t n = 0;
	int get = strcmp(call->route->http_method, "GET") == 0;
	int cacheable = gw_cache_route_cacheable(call->route, call->route->http_method, status);
	int authorized = gw_request_find_header(call->req, "authorization", 13, NULL) != NULL;
	size_t cc_len = gw_cache_control(cacheable, authorized, max_age, cc);
	h[n++] = (gw_header){"cache-control", 13, cc, cc_len};
	if (get && status == 200) {
		if (etag_in != NULL)
			memcpy(etag, etag_in, GW_ETAG_LEN + 1);
		else
			gw_etag(body, len, etag);
		h[n++] = (gw_header){"etag", 4, etag, GW_ETAG_LEN};
		for (const gw_header *inm =
		         gw_request_find_header(call->req, "if-none-match", 13, NULL);
		     inm != NULL; inm = gw_request_find_header(call->req, "if-none-match", 13, inm))
			if (gw_if_none_match(inm->value, inm->value_len, etag, GW_ETAG_LEN) ==
			    GW_INM_MATCH) {
				send_reply(call, 304, NULL, 0, h, n);
				return;
			}
	}
	send_reply(call, status, body, len, h, n);
}

/* After a successful write: drop what it changed from this replica's
 * cache at once (other replicas learn it from the catalog's events); no
 * tags means it could not say, and the whole cache goes. */
static void cache_invalidate(gw_call *call)
{
	if (call->cache_key != NULL || call->cache_tags == NULL)
		return;
	if (call->cache_tags->n > 0)
		gw_cache_invalidate_tags(call->g->cache, call->cache_tags);
	else
		gw_cache_clear(call->g->cache);
}

/* Send a success; a cacheable GET's 200 is stored first (with its ETag,
 * computed once for both), a write's tags invalidated. A failure of the
 * cache only means the reply is not stored. */
static void cache_reply(gw_call *call, int status, const char *body, size_t len)
{
	gw_cache *cache = call->g->cache;
	uint32_t ttl = call->route->cache_ttl_seconds;
	if (call->cache_key != NULL && status == 200) {
		char etag[GW_ETAG_LEN + 1];
		gw_etag(body, len, etag);
		gw_cache_reply r = {.status = 200,
		                    .content_type = "application/json",
		                    .body = body,
		                    .body_len = len,
		                    .etag = etag,
		                    .ttl_seconds = ttl};
		(void)gw_cache_store(cache, call->cache_ticket, call->cache_key,
		                     call->cache_key_len, call->cache_tags, &r);
		send_success(call, status, body, len, etag, ttl);
		return;
	}
	cache_invalidate(call);
	send_success(call, status, body, len, NULL, ttl);
}

static void on_reply(rpc_reply *reply, void *arg)
{
	gw_call *call = arg;
	gw_json_buf b;
	gw_json_buf_init(&b, GW_JSON_REPLY_MAX);
	rpc_status st = rpc_reply_status(reply);
	if (st == RPC_STATUS_OK) {
		gw_json_error jerr;
		const ProtobufCMessage *payload = rpc_reply_payload(reply);
		int status = call->route->success_status ? call->route->success_status : 200;
		if (status == 204) {
			cache_invalidate(call);
			send_reply(call, 204, NULL, 0, NULL, 0);
		} else if (payload != NULL &&
		           gw_json_encode(call->g->schema, payload,
		                          call->route->response_body_field,
		                          GW_JSON_EMIT_UNPOPULATED, &b, &jerr) == RPC_STATUS_OK) {
			cache_reply(call, status, b.data, b.len);
		} else {
			log_write(LOG_ERROR, call->request_id, "gateway.encode",
			          "%s: the reply could not be written as JSON",
			          call->route->path_template);
			gw_json_buf_reset(&b);
			send_error(call, 500, RPC_STATUS_INTERNAL, NULL,
			           "the reply could not be written", NULL, 0);
		}
	} else {
		gw_json_error_reply e = {.code = st,
		                         .message = rpc_reply_message(reply),
		                         .reason = rpc_reply_error_reason(reply),
		                         .details = rpc_reply_details(reply)};
		int http = rpc_status_http(st);
		/* every 401 carries the challenge (RFC 9110 section 11.6.1), also
		 * a service's: a wrong password, a reused refresh token */
		const char *challenge = gw_auth_www_authenticate(0, JWT_OK);
		gw_header wa = {"www-authenticate", 16, challenge, strlen(challenge)};
		if (gw_json_write_error(&b, &e) == RPC_STATUS_OK)
			send_reply(call, http, b.data, b.len, http == 401 ? &wa : NULL,
			           http == 401);
		else
			send_reply(call, 500, NULL, 0, NULL, 0);
	}
	gw_json_buf_free(&b);
	rpc_reply_free(reply);
}

/* ---- the handler ----------------------------------------------------------- */

/* The caller from the Authorization field: 1 with *claims, 0 when the
 * request has no token, -1 for a bad one (*why says why), -2 when no keys
 * are loaded yet. Nothing is answered here: a bad token is refused after
 * the rate limit has charged the client's address. */
static int authenticate(gw_gateway *g, gw_request *req, jwt_claims *claims, jwt_status *why)
{
	const gw_header *h = gw_request_find_header(req, "authorization", 13, NULL);
	const char *token = NULL;
	size_t token_len = 0;
	int bearer = h != NULL ? gw_auth_bearer(h->value, h->value_len, &token, &token_len) : 0;
	if (bearer == 0)
		return 0;
	*why = JWT_ERR_FORM;
	rpc_status st =
	    bearer > 0 && g->auth != NULL
	        ? gw_auth_verify(g->auth, token, token_len, (int64_t)time(NULL), claims, why)
	        : RPC_STATUS_UNAUTHENTICATED;
	if (st == RPC_STATUS_OK)
		return 1;
	if (*why == JWT_ERR_UNKNOWN_KID && g->refresher != NULL)
		gw_jwks_refresher_request(g->refresher, NULL, NULL);
	return st == RPC_STATUS_UNAVAILABLE ? -2 : -1;
}

/* Answer a request whose token did not verify (auth < 0). */
static void refuse_token(gw_call *call, int auth, jwt_status why)
{
	if (auth == -2) {
		send_error(call, 503, RPC_STATUS_UNAVAILABLE, "KEYS_UNAVAILABLE",
		           "the keys that verify access tokens are not loaded yet; try again", NULL,
		           0);
		return;
	}
	const char *challenge = gw_auth_www_authenticate(1, why);
	gw_header wa = {"www-authenticate", 16, challenge, strlen(challenge)};
	send_error(call, 401, RPC_STATUS_UNAUTHENTICATED, GW_AUTH_REASON_INVALID,
	           "the access token is not valid", &wa, 1);
}

/* The client's address: the socket peer, or X-Forwarded-For behind a
 * trusted proxy. 0, or -1 when the peer is not an IP address. */
static int client_address(gw_gateway *g, gw_request *req, gw_ip *out)
{
	socklen_t plen;
	const struct sockaddr *peer = gw_request_peer(req, &plen);
	gw_ip ip;
	if (peer == NULL || gw_ip_from_sockaddr(peer, plen, &ip) != 0)
		return -1;
	*out = ip;
	if (g->trusted == NULL || !gw_proxy_list_contains(g->trusted, &ip))
		return 0;
	size_t n;
	const gw_header *h = gw_request_headers(req, &n);
	gw_http_header *hh = rpc_arena_calloc(gw_request_arena(req), n ? n : 1, sizeof(*hh));
	if (hh == NULL)
		return 0; /* the peer, then */
	for (size_t i = 0; i < n; i++)
		hh[i] = (gw_http_header){h[i].name, h[i].name_len, h[i].value, h[i].value_len};
	gw_clientip c;
	if (gw_clientip_resolve(g->trusted, &ip, hh, n, &c) == RPC_STATUS_OK)
		*out = c.addr;
	return 0;
}

/* The rate limit of the request: 0 to go on (its RateLimit-* fields added
 * to the call's), else answered 429. By user for a verified caller, by
 * client address otherwise; login and register in the auth class. */
static int rate_limit(gw_gateway *g, gw_call *call, size_t route_index, int auth,
                      const jwt_claims *claims)
{
	if (g->ratelimit == NULL)
		return 0;
	gw_ratelimit_class cls =
	    g->rl_class != NULL ? (gw_ratelimit_class)g->rl_class[route_index] : GW_RL_DEFAULT;
	gw_ratelimit_key key;
	gw_ip ip;
	if (auth == 1 && cls == GW_RL_DEFAULT) {
		if (gw_ratelimit_key_user(&key, claims->sub, strlen(claims->sub)) != RPC_STATUS_OK)
			return 0;
	} else if (client_address(g, call->req, &ip) == 0) {
		gw_ratelimit_key_addr(&key, &ip);
	} else {
		return 0; /* not an IP peer (no such socket here) */
	}
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	gw_ratelimit_verdict v;
	if (gw_ratelimit_check(g->ratelimit, cls, &key,
	                       (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000,
	                       &v) != RPC_STATUS_OK)
		return 0;
	gw_http_header f[GW_RATELIMIT_MAX_HEADERS];
	size_t n = gw_ratelimit_headers(&v, &call->rl_values, f);
	call->n_extra = add_fields(call->extra, call->n_extra, GW_CALL_HEADERS, f, n);
	if (v.allowed)
		return 0;
	if (g->metrics != NULL)
		gw_metrics_rate_limited(g->metrics, gw_request_loop(call->req));
	gw_json_buf b;
	gw_json_buf_init(&b, 0);
	if (gw_ratelimit_write_error(&b, &v) == RPC_STATUS_OK)
		send_reply(call, 429, b.data, b.len, NULL, 0);
	else
		send_reply(call, 429, NULL, 0, NULL, 0);
	gw_json_buf_free(&b);
	return -1;
}

/* A CORS preflight: 1 when answered. */
static int preflight(gw_gateway *g, gw_call *call, const char *method, const char *path,
                     size_t path_len)
{
	if (g->cors == NULL || !gw_cors_enabled(g->cors) || strcmp(method, "OPTIONS") != 0)
		return 0;
	gw_request *req = call->req;
	const gw_header *o = gw_request_find_header(req, "origin", 6, NULL);
	const gw_header *m = gw_request_find_header(req, "access-control-request-method", 29, NULL);
	if (o == NULL || m == NULL)
		return 0;
	const gw_header *hs =
	    gw_request_find_header(req, "access-control-request-headers", 30, NULL);
	uint32_t allowed;
	gw_http_result res;
	if (gw_router_allowed(g->router, path, path_len, &allowed, &res) != 0) {
		send_result(call, &res);
		return 1;
	}
	gw_cors_preflight_req pr = {.origin = o->value,
	                            .origin_len = o->value_len,
	                            .method = m->value,
	                            .method_len = m->value_len,
	                            .headers = hs ? hs->value : NULL,
	                            .headers_len = hs ? hs->value_len : 0};
	gw_cors_buf *buf = rpc_arena_alloc(gw_request_arena(req), sizeof(*buf));
	gw_http_header f[GW_CORS_MAX_HEADERS];
	size_t n = 0;
	if (buf == NULL) {
		send_error(call, 500, RPC_STATUS_RESOURCE_EXHAUSTED, NULL, "out of memory", NULL,
		           0);
		return 1;
	}
	int st = gw_cors_preflight(g->cors, g->router, allowed, &pr, buf, f, &n, &res);
	call->n_extra = add_fields(call->extra, 0, GW_CALL_HEADERS, f, n);
	if (st == 204)
		send_reply(call, 204, NULL, 0, NULL, 0);
	else
		send_result(call, &res);
	return 1;
}

/* The route's access policy; 0 when the call may go on, else answered. */
static int authorize(gw_call *call, const gw_route_match *m, int has_caller,
                     const jwt_claims *claims)
{
	const rpc_http_route *r = m->route;
	if (r->access == RPC_ACCESS_PUBLIC)
		return 0;
	if (!has_caller) {
		const char *challenge = gw_auth_www_authenticate(0, JWT_OK);
		gw_header wa = {"www-authenticate", 16, challenge, strlen(challenge)};
		send_error(call, 401, RPC_STATUS_UNAUTHENTICATED, GW_AUTH_REASON_MISSING,
		           "this call needs an access token (Authorization: Bearer)", &wa, 1);
		return -1;
	}
	int admin = (claims->roles & JWT_ROLE_ADMIN) != 0;
	if (r->access == RPC_ACCESS_ADMIN && !admin) {
		send_error(call, 403, RPC_STATUS_PERMISSION_DENIED, "ADMIN_ONLY",
		           "this call is for administrators", NULL, 0);
		return -1;
	}
	if (r->access == RPC_ACCESS_OWNER && r->owner_field != NULL && !admin) {
		for (size_t i = 0; i < m->n_vars; i++)
			if (strcmp(m->vars[i].field_path, r->owner_field) == 0 &&
			    strcmp(m->vars[i].value, claims->sub) != 0) {
				/* someone else's: as if it did not exist */
				send_error(call, 404, RPC_STATUS_NOT_FOUND, "NOT_FOUND",
				           "no such resource", NULL, 0);
				return -1;
			}
	}
	return 0;
}

/* The query parameters of the request, decoded and checked against the
 * route's query fields: 0 (*params NULL when there are none), or answered
 * (400, 500). */
static int parse_query(gw_gateway *g, gw_call *call, const gw_route_match *m,
                       gw_query_param **params, size_t *n_params)
{
	*params = NULL;
	*n_params = 0;
	if (m->query == NULL || m->query_len == 0)
		return 0;
	rpc_arena *arena = gw_request_arena(call->req);
	char *qbuf = rpc_arena_alloc(arena, m->query_len + 1);
	gw_query_param *p = rpc_arena_calloc(arena, GW_QUERY_MAX_PARAMS, sizeof(gw_query_param));
	if (qbuf == NULL || p == NULL) {
		send_error(call, 500, RPC_STATUS_RESOURCE_EXHAUSTED, NULL, "out of memory", NULL,
		           0);
		return -1;
	}
	size_t n = 0;
	gw_http_result res;
	if (gw_query_parse(m->query, m->query_len, qbuf, m->query_len + 1, p, GW_QUERY_MAX_PARAMS,
	                   &n, &res) != 0 ||
	    gw_router_check_query(g->router, m->route_index, p, n, &res) != 0) {
		send_result(call, &res);
		return -1;
	}
	*params = p;
	*n_params = n;
	return 0;
}

/* The response cache's part before the RPC: 1 when answered from the
 * cache, else 0 with the call's key, tags and ticket set for the store
 * (a cacheable GET) or its tags for the invalidation (a write). */
static int cache_lookup(gw_gateway *g, gw_call *call, const gw_route_match *m,
                        const gw_query_param *params, size_t n_params)
{
	unsigned role = g->cache_role != NULL ? g->cache_role[m->route_index] : GW_CACHE_ROLE_NONE;
	if (role == GW_CACHE_ROLE_NONE)
		return 0;
	rpc_arena *arena = gw_request_arena(call->req);
	gw_cache_tags *tags = rpc_arena_alloc(arena, sizeof(*tags));
	if (tags == NULL)
		return 0; /* not cached, then */
	if (gw_cache_route_tags(m->route, m->vars, m->n_vars, role == GW_CACHE_ROLE_WRITE, tags) !=
	    RPC_STATUS_OK) {
		if (role == GW_CACHE_ROLE_WRITE) { /* cannot say what it changes: all of it */
			tags->n = 0;
			call->cache_tags = tags;
		}
		return 0;
	}
	if (role == GW_CACHE_ROLE_WRITE) {
		call->cache_tags = tags;
		return 0;
	}
	unsigned char *key = rpc_arena_alloc(arena, GW_CACHE_KEY_MAX);
	size_t key_len = 0;
	if (key == NULL || gw_cache_key_build(g->cache, g->router, m, params, n_params, key,
	                                      GW_CACHE_KEY_MAX, &key_len) != RPC_STATUS_OK)
		return 0;
	gw_cache_hit hit;
	if (gw_cache_lookup(g->cache, key, key_len, &hit)) {
		call->content_type = hit.content_type;
		send_success(call, hit.status, hit.body, hit.body_len, hit.etag, hit.max_age);
		gw_cache_release(hit.entry);
		return 1;
	}
	call->cache_ticket = gw_cache_ticket(g->cache); /* before the RPC */
	call->cache_key = key;
	call->cache_key_len = key_len;
	call->cache_tags = tags;
	return 0;
}

/* Build the request message; 0, or answered (400, 500). */
static int build_request(gw_gateway *g, gw_call *call, const gw_route_match *m,
                         const gw_query_param *params, size_t n_params, ProtobufCMessage **out)
{
	gw_request *req = call->req;
	const rpc_http_route *r = m->route;
	rpc_arena *arena = gw_request_arena(req);
	ProtobufCMessage *msg = rpc_arena_calloc(arena, 1, r->method->input->sizeof_message);
	if (msg == NULL) {
		send_error(call, 500, RPC_STATUS_RESOURCE_EXHAUSTED, NULL, "out of memory", NULL,
		           0);
		return -1;
	}
	protobuf_c_message_init(r->method->input, msg);
	gw_json_error jerr = {0};
	gw_json_presence keys = {0};
	rpc_status st = RPC_STATUS_OK;
	size_t body_len = 0;
	const char *body = gw_request_body(req, &body_len);
	if (r->body_field != NULL && body_len > 0)
		st = gw_json_decode(g->schema, msg, r->body_field, body, body_len, &arena->pb,
		                    &keys, &jerr);
	for (size_t i = 0; st == RPC_STATUS_OK && i < m->n_vars; i++)
		st = gw_json_set_text(g->schema, msg, m->vars[i].field_path,
		                      strlen(m->vars[i].field_path), m->vars[i].value,
		                      strlen(m->vars[i].value), &arena->pb, &jerr);
	for (size_t i = 0; st == RPC_STATUS_OK && i < n_params; i++)
		st = gw_json_set_text(g->schema, msg, params[i].key, params[i].key_len,
		                      params[i].value, params[i].value_len, &arena->pb, &jerr);
	if (st == RPC_STATUS_OK && strcmp(r->http_method, "PATCH") == 0 && keys.n > 0 &&
	    protobuf_c_message_descriptor_get_field_by_name(r->method->input, "update_mask") !=
	        NULL)
		st = gw_json_fill_update_mask(g->schema, msg, NULL, &keys, &arena->pb, &jerr);
	if (st != RPC_STATUS_OK) {
		gw_json_buf b;
		gw_json_buf_init(&b, 0);
		if (gw_json_write_decode_error(&b, &jerr) == RPC_STATUS_OK)
			send_reply(call, rpc_status_http(jerr.code), b.data, b.len, NULL, 0);
		else
			send_reply(call, 500, NULL, 0, NULL, 0);
		gw_json_buf_free(&b);
		return -1;
	}
	*out = msg;
	return 0;
}

/* ---- /readyz: the health of every service the routes call ------------------ */

#define GW_READY_TIMEOUT_MS 2000u
#define GW_READY_MAX        64u

typedef struct gw_ready {
	gw_call *call;
	atomic_size_t left;      /* checks not answered yet */
	atomic_size_t serving;   /* answered SERVING */
	atomic_size_t first_bad; /* 1 + index of a service not serving; 0: none */
	size_t n;
	const char *names[GW_READY_MAX];
} gw_ready;

typedef struct gw_ready_check {
	gw_ready *ready;
	size_t index;
} gw_ready_check;

static void ready_done(gw_ready *r)
{
	gw_call *call = r->call;
	size_t bad = atomic_load(&r->first_bad);
	char body[256];
	if (bad == 0 && atomic_load(&r->serving) == r->n) {
		int n =
		    snprintf(body, sizeof(body), "{\"status\":\"SERVING\",\"services\":%zu}", r->n);
		send_reply(call, 200, body, (size_t)n, NULL, 0);
		return;
	}
	snprintf(body, sizeof(body), "%s is not serving", bad ? r->names[bad - 1] : "a service");
	send_error(call, 503, RPC_STATUS_UNAVAILABLE, "NOT_READY", body, NULL, 0);
}

static void on_health(rpc_reply *reply, void *arg)
{
	gw_ready_check *c = arg;
	gw_ready *r = c->ready;
	const Grpc__Health__V1__HealthCheckResponse *h =
	    rpc_reply_status(reply) == RPC_STATUS_OK
	        ? (const Grpc__Health__V1__HealthCheckResponse *)rpc_reply_payload(reply)
	        : NULL;
	if (h != NULL &&
	    h->status == GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING)
		atomic_fetch_add(&r->serving, 1);
	else {
		size_t zero = 0;
		atomic_compare_exchange_strong(&r->first_bad, &zero, c->index + 1);
	}
	rpc_reply_free(reply);
	if (atomic_fetch_sub(&r->left, 1) == 1)
		ready_done(r);
}

/* Ask every service of the table for its health, answer when all have. */
static void serve_ready(gw_gateway *g, gw_call *call)
{
	const rpc_route_table *t = gw_router_table(g->router);
	rpc_arena *arena = gw_request_arena(call->req);
	gw_ready *r = rpc_arena_calloc(arena, 1, sizeof(*r));
	gw_ready_check *checks = r ? rpc_arena_calloc(arena, GW_READY_MAX, sizeof(*checks)) : NULL;
	if (checks == NULL) {
		send_error(call, 500, RPC_STATUS_RESOURCE_EXHAUSTED, NULL, "out of memory", NULL,
		           0);
		return;
	}
	r->call = call;
	r->n = t->n_services < GW_READY_MAX ? t->n_services : GW_READY_MAX;
	if (r->n == 0) {
		ready_done(r);
		return;
	}
	for (size_t i = 0; i < r->n; i++)
		r->names[i] = t->services[i]->name;
	size_t n = r->n; /* r may be gone once the last check has answered */
	atomic_store(&r->left, n);
	rpc_call_opts o = {.timeout_ms = GW_READY_TIMEOUT_MS};
	for (size_t i = 0; i < n; i++) {
		Grpc__Health__V1__HealthCheckRequest q =
		    GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
		q.service = (char *)r->names[i];
		checks[i] = (gw_ready_check){.ready = r, .index = i};
		if (grpc_health_v1_health_check_async(g->service_ch[i], &q, &o, on_health,
		                                      &checks[i]) != RPC_STATUS_OK) {
			/* counted as not serving; the last one answers */
			size_t zero = 0;
			atomic_compare_exchange_strong(&r->first_bad, &zero, i + 1);
			if (atomic_fetch_sub(&r->left, 1) == 1)
				ready_done(r);
		}
	}
	/* the last completion answers; nothing here touches r or call now */
}

/* The few paths that are not RPCs; 1 when answered. */
static int serve_builtin(gw_gateway *g, gw_call *call, const char *method, const char *path,
                         size_t path_len)
{
	size_t plen = path_len;
	const char *q = memchr(path, '?', path_len);
	if (q != NULL)
		plen = (size_t)(q - path);
	int get = strcmp(method, "GET") == 0;
	if (plen == 8 && memcmp(path, "/metrics", 8) == 0 && g->metrics != NULL) {
		call->builtin = "/metrics";
		call->slot = gw_metrics_extra_slot(g->metrics, 2);
		if (!get) {
			send_error(call, 405, RPC_STATUS_UNIMPLEMENTED, "METHOD_NOT_ALLOWED",
			           "/metrics answers GET", &(gw_header){"allow", 5, "GET", 3}, 1);
			return 1;
		}
		gw_metrics_text t;
		gw_metrics_text_init(&t, 0);
		if (gw_metrics_render(g->metrics, &t) == RPC_STATUS_OK && !t.failed) {
			call->content_type = GW_METRICS_CONTENT_TYPE;
			send_reply(call, 200, t.data, t.len, NULL, 0);
		} else {
			send_error(call, 500, RPC_STATUS_INTERNAL, NULL,
			           "the metrics could not be written", NULL, 0);
		}
		gw_metrics_text_free(&t);
		return 1;
	}
	if (plen == 8 && memcmp(path, "/healthz", 8) == 0) {
		call->builtin = "/healthz";
		if (g->metrics != NULL)
			call->slot = gw_metrics_extra_slot(g->metrics, 0);
		if (get)
			send_reply(call, 200, "{\"status\":\"SERVING\"}", 20, NULL, 0);
		else
			send_error(call, 405, RPC_STATUS_UNIMPLEMENTED, "METHOD_NOT_ALLOWED",
			           "/healthz answers GET", &(gw_header){"allow", 5, "GET", 3}, 1);
		return 1;
	}
	if (plen == 7 && memcmp(path, "/readyz", 7) == 0) {
		call->builtin = "/readyz";
		if (g->metrics != NULL)
			call->slot = gw_metrics_extra_slot(g->metrics, 3);
		if (get)
			serve_ready(g, call);
		else
			send_error(call, 405, RPC_STATUS_UNIMPLEMENTED, "METHOD_NOT_ALLOWED",
			           "/readyz answers GET", &(gw_header){"allow", 5, "GET", 3}, 1);
		return 1;
	}
	if (plen == 13 && memcmp(path, "/openapi.json", 13) == 0 && g->openapi != NULL) {
		call->builtin = "/openapi.json";
		if (g->metrics != NULL)
			call->slot = gw_metrics_extra_slot(g->metrics, 1);
		if (get)
			send_reply(call, 200, g->openapi, g->openapi_len, NULL, 0);
		else
			send_error(call, 405, RPC_STATUS_UNIMPLEMENTED, "METHOD_NOT_ALLOWED",
			           "/openapi.json answers GET", &(gw_header){"allow", 5, "GET", 3},
			           1);
		return 1;
	}
	return 0;
}

void gw_gateway_handle(gw_request *req, void *arg)
{
	gw_gateway *g = arg;
	rpc_arena *arena = gw_request_arena(req);
	gw_call *call = rpc_arena_calloc(arena, 1, sizeof(*call));
	if (call == NULL) {
		gw_respond(req, 500, NULL, 0, NULL, 0);
		return;
	}
	call->g = g;
	call->req = req;
	call->slot = GW_METRICS_UNMATCHED;
	clock_gettime(CLOCK_MONOTONIC, &call->started);
	clock_gettime(CLOCK_REALTIME, &call->started_wall);
	if (g->metrics != NULL)
		gw_metrics_request_begin(g->metrics, gw_request_loop(req));
	request_id(req, call->request_id);
	const char *rid = call->request_id;
	size_t method_len, path_len;
	const char *method = gw_request_method(req, &method_len);
	const char *path = gw_request_path(req, &path_len);
	if (preflight(g, call, method, path, path_len))
		return;
	if (g->cors != NULL) { /* on every answer from here on */
		const gw_header *o = gw_request_find_header(req, "origin", 6, NULL);
		gw_http_header f[GW_CORS_MAX_HEADERS];
		size_t n =
		    gw_cors_response_headers(g->cors, o ? o->value : NULL, o ? o->value_len : 0, f);
		call->n_extra = add_fields(call->extra, 0, GW_CALL_HEADERS, f, n);
	}
	if (serve_builtin(g, call, method, path, path_len))
		return;

	char *vbuf = rpc_arena_alloc(arena, GW_ROUTER_BUF_SIZE(path_len));
	if (vbuf == NULL) {
		send_error(call, 500, RPC_STATUS_RESOURCE_EXHAUSTED, NULL, "out of memory", NULL,
		           0);
		return;
	}
	gw_route_match m;
	gw_http_result res;
	int st = gw_router_match(g->router, method, method_len, path, path_len, vbuf,
	                         GW_ROUTER_BUF_SIZE(path_len), &m, &res);
	if (st == 405) {
		char allow[GW_ROUTER_ALLOW_MAX];
		size_t n = gw_router_format_allow(g->router, m.allowed, allow, sizeof(allow));
		gw_header h = {"allow", 5, allow, n < sizeof(allow) ? n : sizeof(allow) - 1};
		send_error(call, 405, res.code, res.reason, res.message, &h, 1);
		return;
	}
	if (st != 0) {
		send_result(call, &res);
		return;
	}
	call->route = m.route;
	call->slot = m.route_index;

	jwt_claims claims;
	jwt_status why = JWT_OK;
	int auth = authenticate(g, req, &claims, &why);
	if (rate_limit(g, call, m.route_index, auth, &claims) != 0)
		return;
	if (auth < 0) {
		refuse_token(call, auth, why);
		return;
	}
	int has_caller = auth == 1;
	if (has_caller) {
		char *uid = rpc_arena_strndup(arena, claims.sub, strlen(claims.sub));
		call->user_id = uid;
	}
	if (authorize(call, &m, has_caller, &claims) != 0)
		return;

	gw_query_param *params;
	size_t n_params;
	if (parse_query(g, call, &m, &params, &n_params) != 0)
		return;
	if (g->cache != NULL && cache_lookup(g, call, &m, params, n_params) != 0)
		return;
	ProtobufCMessage *msg;
	if (build_request(g, call, &m, params, n_params, &msg) != 0)
		return;

	rpc_metadata_entry md[GW_MAX_METADATA];
	size_t n_md = has_caller ? gw_auth_caller_metadata(&claims, md) : 0;
	const gw_header *tph = gw_request_find_header(req, "traceparent", 11, NULL);
	gw_traceparent *tp = rpc_arena_alloc(arena, sizeof(*tp));
	int have_tp =
	    tph != NULL && tp != NULL && gw_traceparent_parse(tph->value, tph->value_len, tp) == 0;
	n_md += gw_reqid_metadata(rid, have_tp ? tp : NULL, md + n_md);
	if (m.route->idempotency_key) {
		const gw_header *ik = gw_request_find_header(req, "idempotency-key", 15, NULL);
		if (ik != NULL)
			md[n_md++] = (rpc_metadata_entry){"idempotency-key", ik->value};
	}
	/* A replica lost with the call on it (UNAVAILABLE): the channel sends
	 * an idempotent method once more, to another replica; others are
	 * never sent twice (rpc_call_opts.max_retries). */
	rpc_call_opts o = {
	    .timeout_ms = g->rpc_timeout_ms, .metadata = md, .n_metadata = n_md, .max_retries = 1};
	/* From here the completion may run at once on another thread: nothing
	 * below touches req or call once the call has started. */
	rpc_status cs = rpc_channel_call_async(g->route_ch[m.route_index], m.route->method, msg, &o,
	                                       on_reply, call);
	if (cs != RPC_STATUS_OK)
		send_error(call, rpc_status_http(cs), cs, NULL, "the service could not be called",
		           NULL, 0);
}

/* ---- life cycle ------------------------------------------------------------ */

/* The tags of route r with every path variable "x", in kinds[] as their
 * kind alone ("product:x" -> "product"); the count, 0 on error. */
static size_t route_tag_kinds(const rpc_http_route *r, int write,
                              char kinds[GW_CACHE_MAX_TAGS][GW_CACHE_TAG_MAX])
{
	gw_path_var vars[GW_ROUTER_MAX_VARS];
	gw_cache_tags tags;
	size_t nv = r->n_vars < GW_ROUTER_MAX_VARS ? r->n_vars : GW_ROUTER_MAX_VARS;
	for (size_t i = 0; i < nv; i++)
		vars[i] = (gw_path_var){.field_path = r->vars[i].field_path, .value = "x"};
	if (gw_cache_route_tags(r, vars, nv, write, &tags) != RPC_STATUS_OK)
		return 0;
	for (size_t i = 0; i < tags.n; i++) {
		memcpy(kinds[i], tags.tag[i], GW_CACHE_TAG_MAX);
		char *colon = strchr(kinds[i], ':');
		if (colon != NULL)
			*colon = '\0';
	}
	return tags.n;
}

/*
 * Each route's part in the cache: STORE for a cacheable GET; WRITE for a
 * write whose tags name a kind that some cacheable GET's entries carry
 * (PATCH /v1/products/{id} changes what GET /v1/products/{id} and
 * GET /v1/products show; POST /v1/orders changes nothing cached). Worked
 * out once, from names alone: nothing per endpoint.
 */
static int cache_roles(gw_gateway *g, const rpc_route_table *t)
{
	g->cache_role = calloc(t->n_routes ? t->n_routes : 1, 1);
	if (g->cache_role == NULL)
		return -1;
	enum { MAX_KINDS = 64 };
	char cached[MAX_KINDS][GW_CACHE_TAG_MAX];
	size_t n_cached = 0;
	char kinds[GW_CACHE_MAX_TAGS][GW_CACHE_TAG_MAX];
	for (size_t i = 0; i < t->n_routes; i++) {
		const rpc_http_route *r = &t->routes[i];
		if (!gw_cache_route_cacheable(r, r->http_method, 200))
			continue;
		g->cache_role[i] = GW_CACHE_ROLE_STORE;
		size_t n = route_tag_kinds(r, 0, kinds);
		for (size_t k = 0; k < n && n_cached < MAX_KINDS; k++) {
			size_t j = 0;
			while (j < n_cached && strcmp(cached[j], kinds[k]) != 0)
				j++;
			if (j == n_cached)
				memcpy(cached[n_cached++], kinds[k], GW_CACHE_TAG_MAX);
		}
	}
	for (size_t i = 0; i < t->n_routes; i++) {
		const rpc_http_route *r = &t->routes[i];
		if (strcmp(r->http_method, "GET") == 0)
			continue;
		size_t n = route_tag_kinds(r, 1, kinds);
		for (size_t k = 0; k < n && g->cache_role[i] == GW_CACHE_ROLE_NONE; k++)
			for (size_t j = 0; j < n_cached; j++)
				if (strcmp(cached[j], kinds[k]) == 0)
					g->cache_role[i] = GW_CACHE_ROLE_WRITE;
	}
	return 0;
}

static int read_file(const char *path, char **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return -1;
	char *buf = NULL;
	size_t n = 0, cap = 0;
	for (;;) {
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 65536;
			char *grown = realloc(buf, ncap);
			if (grown == NULL) {
				free(buf);
				fclose(f);
				return -2;
			}
			buf = grown;
			cap = ncap;
		}
		size_t got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got == 0)
			break;
	}
	int bad = ferror(f);
	fclose(f);
	if (bad) {
		free(buf);
		return -1;
	}
	*out = buf;
	*len = n;
	return 0;
}

/* One service's channel: channel_for's, else the default. */
static rpc_channel *channel_of(const gw_gateway_opts *o, const rpc_service_desc *svc)
{
	rpc_channel *ch =
	    o->channel_for != NULL ? o->channel_for(svc->name, o->channel_for_arg) : NULL;
	return ch != NULL ? ch : o->channel;
}

/* Each route's channel and each service's (for /readyz), once. */
static rpc_status resolve_channels(gw_gateway *g, const gw_gateway_opts *o, char *err,
                                   size_t errlen)
{
	const rpc_route_table *t = o->routes;
	g->route_ch = calloc(t->n_routes ? t->n_routes : 1, sizeof(*g->route_ch));
	g->service_ch = calloc(t->n_services ? t->n_services : 1, sizeof(*g->service_ch));
	if (g->route_ch == NULL || g->service_ch == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	for (size_t i = 0; i < t->n_routes; i++)
		if ((g->route_ch[i] = channel_of(o, t->routes[i].service)) == NULL) {
			snprintf(err, errlen, "no channel for %s", t->routes[i].service->name);
			return RPC_STATUS_INVALID_ARGUMENT;
		}
	for (size_t i = 0; i < t->n_services; i++)
		if ((g->service_ch[i] = channel_of(o, t->services[i])) == NULL) {
			snprintf(err, errlen, "no channel for %s", t->services[i]->name);
			return RPC_STATUS_INVALID_ARGUMENT;
		}
	return RPC_STATUS_OK;
}

rpc_status gw_gateway_create(gw_gateway **out, const gw_gateway_opts *o, char *err, size_t errlen)
{
	if (out != NULL)
		*out = NULL;
	char dummy[1];
	if (err == NULL) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	err[0] = '\0';
	if (out == NULL || o == NULL || o->routes == NULL ||
	    (o->channel == NULL && o->channel_for == NULL)) {
		snprintf(err, errlen, "the gateway needs its routes and a channel");
		return RPC_STATUS_INVALID_ARGUMENT;
	}
	gw_gateway *g = calloc(1, sizeof(*g));
	if (g == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	g->channel = o->channel;
	g->auth = o->auth;
	g->refresher = o->refresher;
	g->rpc_timeout_ms = o->rpc_timeout_ms ? o->rpc_timeout_ms : GW_DEFAULT_RPC_TIMEOUT_MS;
	g->ratelimit = o->ratelimit;
	g->cors = o->cors;
	g->trusted = o->trusted_proxies;
	g->metrics = o->metrics;
	g->access_log = o->access_log;
	g->cache = o->cache;
	/* the route's rate-limit class (panthera.api.rate_limit): login,
	 * register and password resets are AUTH, by client address */
	g->rl_class = calloc(o->routes->n_routes ? o->routes->n_routes : 1, 1);
	if (g->rl_class == NULL) {
		free(g);
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	}
	for (size_t i = 0; i < o->routes->n_routes; i++)
		g->rl_class[i] = o->routes->routes[i].rate_limit_class == RPC_RATE_LIMIT_AUTH
		                     ? GW_RL_AUTH
		                     : GW_RL_DEFAULT;
	rpc_status st = resolve_channels(g, o, err, errlen);
	if (st == RPC_STATUS_OK && g->cache != NULL && cache_roles(g, o->routes) != 0)
		st = RPC_STATUS_RESOURCE_EXHAUSTED;
	if (st == RPC_STATUS_OK)
		st = gw_router_new(o->routes, &g->router, err, errlen);
	gw_json_error jerr = {0};
	if (st == RPC_STATUS_OK &&
	    (st = gw_json_schema_from_routes(&g->schema, o->routes, NULL, &jerr)) != RPC_STATUS_OK)
		snprintf(err, errlen, "JSON schema: %s: %s", jerr.field, jerr.description);
	if (st == RPC_STATUS_OK && o->auth == NULL)
		for (size_t i = 0; i < o->routes->n_routes; i++)
			if (o->routes->routes[i].access != RPC_ACCESS_PUBLIC) {
				snprintf(err, errlen,
				         "route %s %s needs tokens checked: no gw_auth given",
				         o->routes->routes[i].http_method,
				         o->routes->routes[i].path_template);
				st = RPC_STATUS_INVALID_ARGUMENT;
				break;
			}
	if (st == RPC_STATUS_OK && o->openapi_file != NULL) {
		int rc = read_file(o->openapi_file, &g->openapi, &g->openapi_len);
		if (rc != 0) {
			snprintf(err, errlen, "cannot read %s", o->openapi_file);
			st = rc == -2 ? RPC_STATUS_RESOURCE_EXHAUSTED : RPC_STATUS_NOT_FOUND;
		}
	}
	if (st != RPC_STATUS_OK) {
		gw_gateway_destroy(g);
		return st;
	}
	*out = g;
	return RPC_STATUS_OK;
}

void gw_gateway_destroy(gw_gateway *g)
{
	if (g == NULL)
		return;
	gw_router_free(g->router);
	gw_json_schema_free(g->schema);
	free(g->rl_class);
	free(g->cache_role);
	free(g->route_ch);
	free(g->service_ch);
	free(g->openapi);
	free(g);
}
