/*
 * rpc_route.h - the HTTP bindings of RPC methods, as the generator emits them.
 *
 * protoc-gen-panthera reads every method's google.api.http rule and Panthera
 * options and writes one constant route table for the whole set of protos
 * (gen/panthera_routes.c). Path templates arrive already parsed into
 * segments, so the gateway matches without parsing at start-up, and every
 * rule has been checked: variables name fields, body fields exist, no two
 * routes collide. A route per binding: a method with additional_bindings has
 * several routes.
 *
 * Everything here is constant data; any thread may read it at any time.
 */
#ifndef PANTHERA_RPC_ROUTE_H
#define PANTHERA_RPC_ROUTE_H

#include <stddef.h>
#include <stdint.h>

#include "panthera/rpc.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Who may call a route; mirrors panthera.api.AccessPolicy. */
typedef enum rpc_access_policy {
	RPC_ACCESS_PUBLIC = 1, /* anyone */
	RPC_ACCESS_USER = 2,   /* any valid access token */
	RPC_ACCESS_OWNER = 3,  /* the owner of the resource, or an admin */
	RPC_ACCESS_ADMIN = 4,  /* tokens with the ADMIN role */
} rpc_access_policy;

typedef enum rpc_path_segment_kind {
	RPC_SEGMENT_LITERAL = 0, /* matches `literal` exactly */
	RPC_SEGMENT_ANY = 1,     /* "*": exactly one segment */
	RPC_SEGMENT_ANY_REST = 2 /* "**": zero or more segments; last only */
} rpc_path_segment_kind;

typedef struct rpc_path_segment {
	rpc_path_segment_kind kind;
	const char *literal; /* for RPC_SEGMENT_LITERAL; NULL otherwise */
} rpc_path_segment;

/* A path variable: the request field it sets, from which segments. */
typedef struct rpc_path_var {
	/* Dotted proto field path from the request message: "user_id",
	 * or "book.name" for a nested field. */
	const char *field_path;
	/* The variable covers segments [first, last) of the route. */
	uint16_t first;
	uint16_t last;
} rpc_path_var;

typedef struct rpc_http_route {
	/* The method this route calls, and its service. */
	const rpc_service_desc *service;
	const rpc_method_desc *method;
	/* "GET", "PUT", "POST", "DELETE", "PATCH", or a custom method's kind. */
	const char *http_method;
	/* The template as written in the proto, for logs and metrics labels. */
	const char *path_template;
	/* The parsed template: segments, the variables over them, and the
	 * custom verb after ':' (NULL when none). */
	const rpc_path_segment *segments;
	size_t n_segments;
	const rpc_path_var *vars;
	size_t n_vars;
	const char *verb;
	/* NULL: no body. "*": the body is the request message, less the path
	 * fields. Otherwise the top-level request field the body fills. */
	const char *body_field;
	/* NULL: the whole response is the body; otherwise that response field. */
	const char *response_body_field;
	/* Top-level request fields read from the query string: every field not
	 * bound by the path or the body ("*" leaves none). Proto names. */
	const char *const *query_fields;
	size_t n_query_fields;
	/* Access policy and, for RPC_ACCESS_OWNER, the request field that holds
	 * the owner's user id (NULL: the service checks ownership itself). */
	rpc_access_policy access;
	const char *owner_field;
	/* HTTP status of a success: 200, 201, 202 or 204. */
	uint16_t success_status;
	/* Seconds a reply may be cached; 0 for no caching. */
	uint32_t cache_ttl_seconds;
	/* 1 when the method honours an Idempotency-Key header, which the
	 * gateway forwards as the "idempotency-key" metadata entry. */
	uint8_t idempotency_key;
	/* The gateway's rate-limit class: RPC_RATE_LIMIT_DEFAULT, or
	 * RPC_RATE_LIMIT_AUTH for methods that guess at credentials or create
	 * accounts (panthera.api.rate_limit). */
	uint8_t rate_limit_class;
} rpc_http_route;

/* rpc_http_route.rate_limit_class; mirrors panthera.api.RateLimitClass. */
enum { RPC_RATE_LIMIT_DEFAULT = 0, RPC_RATE_LIMIT_AUTH = 1 };

/* A generated route table. */
typedef struct rpc_route_table {
	const rpc_http_route *routes;
	size_t n_routes;
	/* Every service that has at least one route, and their count. */
	const rpc_service_desc *const *services;
	size_t n_services;
} rpc_route_table;

#ifdef __cplusplus
}
#endif

#endif /* PANTHERA_RPC_ROUTE_H */
