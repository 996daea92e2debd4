/*
 * pgen.h - internals of protoc-gen-panthera, the protoc plugin that turns
 * annotated .proto services into typed C stubs, a route table and an
 * OpenAPI document.
 *
 * The flow (main.c): read a CodeGeneratorRequest from stdin; index every
 * file, message, enum and service it carries (model.c); decode each method's
 * google.api.http rule and Panthera options from the unknown fields protobuf-c
 * keeps for extensions (options.c); parse and check every binding
 * (routes.c); emit per-file stubs (emit_c.c), the route table
 * (emit_routes.c) and the OpenAPI document (emit_openapi.c); answer with a
 * CodeGeneratorResponse on stdout.
 *
 * Memory: the plugin is one short process. Everything it builds lives in
 * one arena (pgen_arena) freed at exit; allocation failure is reported as an
 * error, never by aborting. Output buffers (pgen_buf) record failure in a
 * sticky flag so emitters stay readable and check once at the end.
 *
 * Errors about the input (a bad annotation) go into the response's `error`
 * field, which protoc prints; they name the proto file, the method and the
 * reason. Only a broken protocol (undecodable stdin) exits non-zero.
 */
#ifndef PGEN_H
#define PGEN_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "google/api/http.pb-c.h"
#include "google/protobuf/compiler/plugin.pb-c.h"
#include "google/protobuf/descriptor.pb-c.h"
#include "panthera/api/options.pb-c.h"

typedef Google__Protobuf__FileDescriptorProto pgen_file_proto;
typedef Google__Protobuf__DescriptorProto pgen_msg_proto;
typedef Google__Protobuf__FieldDescriptorProto pgen_field_proto;
typedef Google__Protobuf__EnumDescriptorProto pgen_enum_proto;
typedef Google__Protobuf__ServiceDescriptorProto pgen_svc_proto;
typedef Google__Protobuf__MethodDescriptorProto pgen_method_proto;

/* ---- arena and buffers (buf.c) ---- */

typedef struct pgen_arena_block pgen_arena_block;
typedef struct pgen_arena {
	pgen_arena_block *head;
	int failed; /* an allocation failed */
} pgen_arena;

void *pgen_alloc(pgen_arena *a, size_t size);                 /* zeroed; NULL on failure */
void *pgen_alloc_array(pgen_arena *a, size_t n, size_t size); /* overflow-checked */
char *pgen_strdup(pgen_arena *a, const char *s);
char *pgen_strndup(pgen_arena *a, const char *s, size_t n);
char *pgen_printf(pgen_arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void pgen_arena_free(pgen_arena *a);

typedef struct pgen_buf {
	char *data;
	size_t len;
	size_t cap;
	int failed; /* sticky: an append failed; data is incomplete */
} pgen_buf;

void pgen_buf_putn(pgen_buf *b, const char *s, size_t n);
void pgen_buf_puts(pgen_buf *b, const char *s);
void pgen_buf_putc(pgen_buf *b, char c);
void pgen_buf_printf(pgen_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void pgen_buf_vprintf(pgen_buf *b, const char *fmt, va_list ap);
void pgen_buf_free(pgen_buf *b);

/* ---- names (names.c) ---- */

/* protoc-c's names for a full proto name ".pkg.Outer.Inner" */
char *pgen_c_type(pgen_arena *a, const char *full_name);  /* Pkg__Outer__Inner */
char *pgen_c_lower(pgen_arena *a, const char *full_name); /* pkg__outer__inner */
/* "GetProduct" -> "get_product", "HTTPRule" -> "httprule" as protoc-c does */
char *pgen_camel_to_lower(pgen_arena *a, const char *name);
char *pgen_to_upper(pgen_arena *a, const char *s);
/* "foo/bar.proto" -> "foo/bar" */
char *pgen_strip_proto(pgen_arena *a, const char *file);
/* "zip_code" -> "zipCode", the proto3 JSON name protoc would derive */
char *pgen_json_name(pgen_arena *a, const char *field_name);
/* Length of the valid UTF-8 sequence at p (1..4), or 0 when the bytes are
 * not one (overlong forms, surrogates and code points past U+10FFFF too). */
size_t pgen_utf8_len(const unsigned char *p);

/* ---- the model (model.c) ---- */

typedef struct pgen_enum {
	const char *full_name; /* ".pkg.Enum" */
	const pgen_enum_proto *proto;
	const pgen_file_proto *file;
	const char *comment;         /* leading comment, or NULL */
	const char **value_comments; /* per value, may be NULL entries */
} pgen_enum;

typedef struct pgen_message {
	const char *full_name; /* ".pkg.Msg" */
	const pgen_msg_proto *proto;
	const pgen_file_proto *file;
	const char *comment;
	const char **field_comments; /* per field */
	int is_map_entry;
} pgen_message;

typedef struct pgen_http_binding {
	const char *http_method;   /* "GET", ... or custom kind */
	const char *path_template; /* as written */
	const char *body;          /* NULL or field name or "*" */
	const char *response_body; /* NULL or field name */
} pgen_http_binding;

typedef struct pgen_segment {
	int kind; /* 0 literal, 1 "*", 2 "**" */
	const char *literal;
} pgen_segment;

typedef struct pgen_var {
	const char *field_path; /* proto names, dotted */
	unsigned first, last;
} pgen_var;

typedef struct pgen_route {
	struct pgen_method *method;
	const pgen_http_binding *binding;
	pgen_segment *segments;
	size_t n_segments;
	pgen_var *vars;
	size_t n_vars;
	const char *verb; /* NULL or the custom verb */
	const char **query_fields;
	size_t n_query_fields;
	size_t index; /* position in the route table */
} pgen_route;

typedef struct pgen_method {
	const pgen_method_proto *proto;
	struct pgen_service *service;
	const char *comment;
	const pgen_message *input;
	const pgen_message *output;
	/* decoded options */
	pgen_http_binding *bindings;
	size_t n_bindings;
	int access; /* PANTHERA__API__ACCESS_POLICY__* */
	const char *owner_field;
	unsigned success_status;
	unsigned cache_ttl;
	int idempotency_key;  /* honours an Idempotency-Key header */
	int rate_limit_class; /* panthera.api.RateLimitClass */
	uint32_t flags;       /* RPC_METHOD_* values */
	pgen_route *routes;
	size_t n_routes;
	/* generated names */
	const char *c_name;  /* get_product */
	const char *c_upper; /* GET_PRODUCT */
} pgen_method;

typedef struct pgen_service {
	const pgen_svc_proto *proto;
	const pgen_file_proto *file;
	const char *full_name; /* "pkg.Service" (no leading dot) */
	const char *comment;
	pgen_method *methods;
	size_t n_methods;
	const char *c_prefix; /* pkg_service, e.g. panthera_catalog_v1_catalog_service */
	const char *c_upper;  /* PANTHERA_CATALOG_V1_CATALOG_SERVICE */
} pgen_service;

typedef struct pgen {
	pgen_arena arena;
	const Google__Protobuf__Compiler__CodeGeneratorRequest *req;
	/* parameters */
	const char *name;          /* base name of the set outputs, default "panthera" */
	const char *openapi_title; /* info.title */
	const char *openapi_version;
	const char *openapi_server; /* servers[0].url */
	int emit_set;               /* routes + openapi: 1 unless "set=false" */
	/* index */
	pgen_message *messages;
	size_t n_messages;
	pgen_enum *enums;
	size_t n_enums;
	pgen_service *services; /* services of files to generate, in order */
	size_t n_services;
	pgen_route **routes; /* every route, in table order */
	size_t n_routes;
	/* the first error */
	char *error;
	/* output */
	Google__Protobuf__Compiler__CodeGeneratorResponse__File **files;
	size_t n_files;
	size_t cap_files;
} pgen;

/* Record the first error (later ones are dropped). Returns -1. */
int pgen_fail(pgen *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Add an output file; takes the buffer's bytes. Returns 0 or -1. */
int pgen_add_file(pgen *g, const char *name, pgen_buf *content);

int pgen_parse_params(pgen *g, const char *param);
int pgen_build_model(pgen *g);
const pgen_message *pgen_find_message(const pgen *g, const char *full_name);
const pgen_enum *pgen_find_enum(const pgen *g, const char *full_name);
int pgen_file_is_generated(const pgen *g, const char *file_name);
const pgen_field_proto *pgen_find_field(const pgen_message *m, const char *name);
const pgen_field_proto *pgen_find_field_n(const pgen_message *m, const char *name, size_t n);

/* options.c */
int pgen_decode_method_options(pgen *g, pgen_method *m);

/* routes.c */
int pgen_parse_template(pgen *g, pgen_method *m, const char *tmpl, pgen_route *r);
int pgen_build_routes(pgen *g);

/* emitters */
int pgen_check_c_names(pgen *g);
int pgen_emit_c(pgen *g);
int pgen_emit_routes(pgen *g);
int pgen_emit_openapi(pgen *g);

#endif /* PGEN_H */
