/*
 * gw_json.h - the gateway's transcoder between JSON and protobuf-c messages.
 *
 * The public REST API (API.md) speaks the proto3 JSON mapping; services speak
 * protobuf. This module converts between the two for every message, through
 * the protobuf-c descriptors only: nothing here knows an endpoint.
 *
 *   gw_json_schema   built once at start-up from the route table (or any
 *                    set of message descriptors): every reachable message
 *                    with its JSON field names, name lookup tables and
 *                    well-known-type kind. Immutable afterwards.
 *   decode           a request body (JSON text) into a request message, or
 *                    into one of its fields (`body: "field"`), read in one
 *                    pass by the pull reader below, without a tree.
 *   set_text         one path variable or query parameter into a field,
 *                    named by a dotted path ("filter.category_id").
 *   fill_update_mask a PATCH's FieldMask from the keys the body had (AIP-134).
 *   encode           a message (or one of its fields) into JSON text, with a
 *                    streaming writer into a growable buffer (no DOM).
 *   write_error      the AIP-193 error body.
 *
 * The mapping (docs/gateway/json.md has the details and every choice):
 * output names are lowerCamelCase, input accepts them and the proto names;
 * 64-bit integers are strings on output and strings or numbers on input;
 * enums are names (numbers accepted on input); bytes are base64; Timestamp
 * is RFC 3339, Duration "1.5s", FieldMask "a.b,cD", wrappers their bare
 * value, Empty {}. google.protobuf.Struct, Value, ListValue and Any are not
 * supported (no proto of ours uses them): building a schema that reaches one
 * fails with RPC_STATUS_UNIMPLEMENTED naming it.
 *
 * Memory: decoding allocates every string, array and sub-message from the
 * ProtobufCAllocator the caller passes, and never calls its free: give it an
 * arena (rpc_arena's `pb`) and release the whole request in one go. Never
 * hand a decoded message to protobuf_c_message_free_unpacked(). Encoding
 * writes into a gw_json_buf that the caller owns and may reuse.
 *
 * Errors: every call returns an rpc_status and, when it is not OK, fills the
 * caller's gw_json_error: INVALID_ARGUMENT for what the client sent (with
 * the JSON path of the field at fault), RESOURCE_EXHAUSTED when memory or a
 * limit ran out, INTERNAL for a message the schema cannot express (a service
 * bug, such as a Timestamp out of range). Nothing here aborts on input.
 *
 * Thread-safety: a schema is read-only once built and may be shared by any
 * number of threads; every other call touches only its arguments, so calls
 * on distinct messages, allocators and buffers may run concurrently.
 * Numbers are read and written with strtod() and snprintf(), in the C
 * numeric locale: a process using this must not set LC_NUMERIC otherwise.
 */
#ifndef PANTHERA_GW_JSON_H
#define PANTHERA_GW_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

#include "panthera/rpc_route.h"
#include "panthera/rpc_status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- errors -------------------------------------------------------------- */

#define GW_JSON_FIELD_MAX       256
#define GW_JSON_DESCRIPTION_MAX 256

/*
 * What went wrong. `field` is the JSON path of the offending field as the
 * client wrote it ("shippingAddress.zipCode", "items[2].quantity",
 * "labels[color]"; a query key as given), "" when the fault is the body as a
 * whole (malformed JSON) or not the client's. `description` says why, for a
 * developer; it never holds more of the input than a field name or a short
 * token. Both are NUL-terminated and cut to fit.
 */
typedef struct gw_json_error {
	rpc_status code;
	char field[GW_JSON_FIELD_MAX];
	char description[GW_JSON_DESCRIPTION_MAX];
} gw_json_error;

/* ---- schema -------------------------------------------------------------- */

typedef struct gw_json_schema gw_json_schema;

/* Bounds applied to every decoded body. Zero fields take the defaults. */
typedef struct gw_json_limits {
	/* Deepest nesting of objects and arrays; the body itself is level 1.
	 * Default 32. */
	unsigned max_depth;
	/* Most JSON values (scalars, objects, arrays, map entries) one body may
	 * hold. Default 65536. */
	size_t max_values;
} gw_json_limits;

/*
 * Build a schema holding `roots[0..n_roots)` and every message reachable
 * from their fields. `limits` may be NULL (defaults). On success *out is the
 * schema, to free with gw_json_schema_free(); on error *out is NULL, `err`
 * says which message or field is at fault, and the code is
 * RPC_STATUS_UNIMPLEMENTED (a type this mapping does not support),
 * RPC_STATUS_INVALID_ARGUMENT (a NULL or malformed descriptor, two fields
 * with one JSON name) or RPC_STATUS_RESOURCE_EXHAUSTED (no memory).
 * `err` may be NULL. Call once at start-up.
 */
rpc_status gw_json_schema_new(gw_json_schema **out, const ProtobufCMessageDescriptor *const *roots,
                              size_t n_roots, const gw_json_limits *limits, gw_json_error *err);

/* gw_json_schema_new() over the input and output messages of every route of
 * `table`. */
rpc_status gw_json_schema_from_routes(gw_json_schema **out, const rpc_route_table *table,
                                      const gw_json_limits *limits, gw_json_error *err);

/* Free a schema. NULL is harmless. No call may be using it. */
void gw_json_schema_free(gw_json_schema *s);

/*
 * The field of message type `desc` named `name[0..len)`, by its JSON name
 * ("pageSize") or its proto name ("page_size"); NULL when it has none, or
 * when the schema does not hold `desc`. One hash probe; for the router's
 * check of query keys.
 */
const ProtobufCFieldDescriptor *gw_json_find_field(const gw_json_schema *s,
                                                   const ProtobufCMessageDescriptor *desc,
                                                   const char *name, size_t len);

/* ---- decoding ------------------------------------------------------------- */

/* One key of the body: a top-level field, or a field one level down inside
 * a message-typed top-level field whose value was a non-empty object. */
typedef struct gw_json_present_field {
	const ProtobufCFieldDescriptor *field; /* the top-level field */
	const ProtobufCFieldDescriptor *child; /* its sub-field, or NULL */
} gw_json_present_field;

/* The keys a body had, in body order; from the decode's allocator. */
typedef struct gw_json_presence {
	size_t n;
	const gw_json_present_field *fields;
} gw_json_presence;

/*
 * Decode the JSON text `json[0..len)` into `msg`, a message already
 * initialised (its generated __init(), or fields set from the path), of a
 * type the schema holds.
 *
 * body_field: NULL or "*": the body is the message, a JSON object. Otherwise
 *             the proto name of the top-level field the body fills (the
 *             route's `body: "field"`): an object for a message field, an
 *             array for a repeated one, a bare value for a scalar; error
 *             paths then start with that field's JSON name.
 * alloc:      where every string, array and sub-message comes from; its
 *             free is never called (see the top of this file). Required.
 * presence:   NULL, or receives the keys of the body (of the body object
 *             that the field receives, for a `body_field`): what
 *             gw_json_fill_update_mask() needs. Set to {0, NULL} on error.
 *
 * An empty body (len 0) sets nothing and succeeds. Keys name fields by JSON
 * or proto name; null clears a field. Merges into what `msg` already holds:
 * sub-messages already present are decoded into, a repeated or map field
 * given in the body is replaced. On error `msg` may be partly filled (all of it from
 * `alloc`): drop the request. Errors: INVALID_ARGUMENT (malformed JSON,
 * a field or map key given twice, invalid UTF-8 or \u0000 in a string,
 * nesting past max_depth, more than max_values values, unknown field,
 * wrong type, out of range, two members of a oneof, ...),
 * RESOURCE_EXHAUSTED (the allocator returned NULL), INTERNAL (msg's type
 * is not in the schema, body_field names no field). A semantic error is
 * reported where it is met, before any syntax error further on.
 */
rpc_status gw_json_decode(const gw_json_schema *s, ProtobufCMessage *msg, const char *body_field,
                          const char *json, size_t len, ProtobufCAllocator *alloc,
                          gw_json_presence *presence, gw_json_error *err);

/*
 * Set the field at dotted `path[0..path_len)` of `msg` from the text
 * `value[0..value_len)` (already percent-decoded): a path variable or a
 * query parameter. Each component is a JSON or proto name; all but the
 * last name singular message fields, created when unset. The last names a
 * scalar, enum, string, bytes, Timestamp, Duration, FieldMask or wrapper
 * field, or a repeated field of those, to which each call appends one
 * element (a FieldMask's comma-separated paths are appended to its own).
 * Text forms: integers and floats as in JSON (and "NaN", "Infinity",
 * "-Infinity"), bools "true"/"false", enums by name or number, bytes in
 * base64, the well-known types as in JSON. A singular field set twice keeps
 * the last value. Errors: INVALID_ARGUMENT with err->field the path as given
 * (unknown field, a message or map field, a bad value, invalid UTF-8 or
 * NUL in a string), RESOURCE_EXHAUSTED, INTERNAL (msg's type not in the
 * schema). A repeated field's array must have come from this module (or
 * be empty): appending doubles it in place of power-of-two sizes.
 */
rpc_status gw_json_set_text(const gw_json_schema *s, ProtobufCMessage *msg, const char *path,
                            size_t path_len, const char *value, size_t value_len,
                            ProtobufCAllocator *alloc, gw_json_error *err);

/*
 * AIP-134: fill the FieldMask field `mask_field` (proto name; NULL means
 * "update_mask") of `msg` from the keys of its body, when the body did not
 * set it (it is not among `presence`) and nothing else did (it is unset or
 * has no paths). The paths are proto names: "name" for a key, "address.city"
 * for a key one level down inside a message-typed key whose value was a
 * non-empty object. The mask field itself is left out. A body without keys
 * leaves the mask alone. `presence` from gw_json_decode() on the same
 * message (or on its `body_field`, whose keys then are the paths, as
 * AIP-134 has them relative to the resource). Errors: INTERNAL when
 * `mask_field` is not a singular google.protobuf.FieldMask field of msg,
 * RESOURCE_EXHAUSTED.
 */
rpc_status gw_json_fill_update_mask(const gw_json_schema *s, ProtobufCMessage *msg,
                                    const char *mask_field, const gw_json_presence *presence,
                                    ProtobufCAllocator *alloc, gw_json_error *err);

/* ---- the output buffer and writer --------------------------------------- */

/*
 * A growable byte buffer (malloc/realloc). `data[0..len)` is the output; it
 * is not NUL-terminated. Writes never fail one by one: the first failure
 * (no memory, or growing past `max`) sets `failed`, the output is then
 * incomplete, and gw_json_buf_status() tells at the end. Reuse it across requests
 * with gw_json_buf_reset() to keep its memory. Not thread-safe.
 */
typedef struct gw_json_buf {
	char *data;
	size_t len;
	size_t cap;
	size_t max; /* most bytes it may hold; 0: no bound */
	int failed; /* 1: out of memory, 2: over max */
} gw_json_buf;

/* An empty buffer that will hold at most `max` bytes (0: no bound). */
void gw_json_buf_init(gw_json_buf *b, size_t max);
/* Empty it, keep its memory and bound, clear `failed`. */
void gw_json_buf_reset(gw_json_buf *b);
/* Free its memory; it is then empty and may be reused. NULL is harmless. */
void gw_json_buf_free(gw_json_buf *b);
/* OK, or RESOURCE_EXHAUSTED once a write failed. */
rpc_status gw_json_buf_status(const gw_json_buf *b);
/* Make room for `extra` more bytes; 0, or -1 (and `failed` set). */
int gw_json_buf_grow(gw_json_buf *b, size_t extra);

/* Append n raw bytes. */
static inline void gw_json_buf_put(gw_json_buf *b, const void *p, size_t n)
{
	if (b->cap - b->len < n && gw_json_buf_grow(b, n) != 0)
		return;
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
}

/* Writer primitives; the caller places ',' ':' '{' ... itself. */
/* s[0..n) as a JSON string: quoted; '"', '\\' and control characters
 * escaped, U+2028 and U+2029 as \u escapes, other valid UTF-8 as is,
 * bytes of invalid UTF-8 each replaced by U+FFFD. */
void gw_json_write_string(gw_json_buf *b, const char *s, size_t n);
/* The same escaping without the quotes, for a string written in pieces. */
void gw_json_write_escaped(gw_json_buf *b, const char *s, size_t n);
void gw_json_write_int(gw_json_buf *b, int64_t v);
void gw_json_write_uint(gw_json_buf *b, uint64_t v);
/* Shortest text that reads back as the same double (float): a JSON number,
 * or the strings "NaN", "Infinity", "-Infinity". */
void gw_json_write_double(gw_json_buf *b, double v);
void gw_json_write_float(gw_json_buf *b, float v);

/* ---- encoding ------------------------------------------------------------- */

enum {
	/*
	 * Also write fields at their default value: scalars (0, "", false, the
	 * enum's zero name), empty repeated fields as [] and empty maps as {}.
	 * Unset message fields, unset oneofs and unset fields with explicit
	 * presence (proto3 `optional`, proto2) are still left out. The
	 * gateway's choice for API.md's resources, whose every field is
	 * listed ("total": 0, "isActive": false, "items": []).
	 */
	GW_JSON_EMIT_UNPOPULATED = 1u << 0,
};

/*
 * Append `msg` as JSON to `out`. field: NULL or "*" for the whole message,
 * or the proto name of the top-level field to write alone (a route's
 * response_body; written even at its default value: [] for an empty
 * repeated field, null for an unset message). Without GW_JSON_EMIT_UNPOPULATED, proto3 defaults are left out.
 * On error `out` holds a partial document: reset it. Errors: INTERNAL (a
 * type not in the schema, `field` names no field, a Timestamp or Duration
 * out of range, nesting past 100 levels), RESOURCE_EXHAUSTED (the buffer).
 */
rpc_status gw_json_encode(const gw_json_schema *s, const ProtobufCMessage *msg, const char *field,
                          unsigned flags, gw_json_buf *out, gw_json_error *err);

/* ---- error bodies --------------------------------------------------------- */

/* A google.rpc.BadRequest field violation. */
typedef struct gw_json_violation {
	const char *field;
	const char *description;
} gw_json_violation;

/* An error reply to write. Everything but `code` may be 0/NULL. */
typedef struct gw_json_error_reply {
	/* "code" of the body and the HTTP status; 0: rpc_status_http(code).
	 * Set it for answers of the gateway itself that have no RPC status
	 * of their own (405, 413). */
	int http_status;
	rpc_status code; /* "status": its canonical name */
	const char *message;
	/* A google.rpc.ErrorInfo detail when reason is not empty; domain NULL
	 * or "" means "panthera.dev". */
	const char *reason;
	const char *domain;
	/* A google.rpc.BadRequest detail when n_violations > 0. */
	const gw_json_violation *violations;
	size_t n_violations;
	/* The reply's details as rpc_reply_details() returns them (a
	 * panthera.rpc.v1.ErrorDetails), or NULL: their ErrorInfo (with its
	 * metadata) and field violations are written, in place of `reason`
	 * and `domain` when it has an ErrorInfo, after `violations`. */
	const ProtobufCMessage *details;
} gw_json_error_reply;

/*
 * Append the AIP-193 body {"error": {"code", "status", "message",
 * "details": [...]}} ("details" always present, maybe []). Returns
 * gw_json_buf_status(b).
 */
rpc_status gw_json_write_error(gw_json_buf *b, const gw_json_error_reply *e);

/*
 * The error body of a failed decode or set_text: err->code with its HTTP
 * status, the message "<field>: <description>" (or the description alone),
 * and a BadRequest violation {field, description} when err->field is set.
 */
rpc_status gw_json_write_decode_error(gw_json_buf *b, const gw_json_error *err);

/* ---- the JSON reader (gw_json_read.c) ------------------------------------ */

/*
 * A pull reader over JSON text (RFC 8259), the decoder's parser: no tree,
 * no allocation, one pass. It checks everything a token can be checked for
 * as it reads it: string escapes (surrogates paired, no \u0000), raw
 * control characters, UTF-8 (no overlongs, surrogates or > U+10FFFF),
 * the number grammar, literals, and the commas and colons between them.
 * What a value means, duplicate keys and nesting depth are the caller's.
 * After an error the reader stays failed: `error` says why (static text)
 * and `error_at` where (a byte offset). Not thread-safe; a reader belongs
 * to one caller.
 */
typedef enum gw_json_kind {
	GW_JSON_NONE = 0,
	GW_JSON_OBJECT, /* '{' read; its keys follow */
	GW_JSON_ARRAY,  /* '[' read; its elements follow */
	GW_JSON_STRING,
	GW_JSON_NUMBER,
	GW_JSON_TRUE,
	GW_JSON_FALSE,
	GW_JSON_NULL,
} gw_json_kind;

typedef struct gw_json_token {
	gw_json_kind kind;
	/* STRING: the raw text between the quotes (escapes not undone);
	 * NUMBER: the number's text. Points into the input. */
	const char *text;
	size_t len;
	int escaped; /* STRING: has escapes; gw_json_unescape() gives its value */
	int integer; /* NUMBER: no fraction and no exponent */
} gw_json_token;

typedef struct gw_json_reader {
	const char *start, *p, *end;
	const char *error; /* NULL while fine */
	size_t error_at;
} gw_json_reader;

/* Read s[0..n) (need not be NUL-terminated; must outlive the reader). */
void gw_json_reader_init(gw_json_reader *r, const char *s, size_t n);
/* The next value: a scalar whole, or the '{' or '[' opening a container.
 * 0, or -1 with r->error set. */
int gw_json_read_value(gw_json_reader *r, gw_json_token *t);
/* In an object (after GW_JSON_OBJECT): the next key and its ':' into
 * *key; returns 1, or 0 when the closing '}' was read instead, or -1.
 * `first` is 1 before the object's first key; the call clears it. */
int gw_json_read_key(gw_json_reader *r, int *first, gw_json_token *key);
/* In an array (after GW_JSON_ARRAY): 1 when an element follows (read it
 * with gw_json_read_value()), 0 when the closing ']' was read, or -1. */
int gw_json_read_next(gw_json_reader *r, int *first);
/* Skip what follows token t (a container's contents and close; nothing
 * for a scalar), at most max_depth containers deep. 0, or -1. */
int gw_json_skip(gw_json_reader *r, const gw_json_token *t, unsigned max_depth);
/* After the top-level value: nothing but whitespace may follow. 0, or -1. */
int gw_json_read_end(gw_json_reader *r);
/* Line and column (both from 1, columns in bytes) of byte offset `at`. */
void gw_json_reader_position(const gw_json_reader *r, size_t at, int *line, int *column);
/* The value of a string token's raw text, as the reader checked it: at
 * most n bytes written to out (never more than the raw text). Returns the
 * length; no NUL is added. */
size_t gw_json_unescape(const char *raw, size_t n, char *out);

/* ---- text forms of the well-known types (gw_json_text.c) ---------------- */

#define GW_JSON_TIMESTAMP_MAX 36 /* "9999-12-31T23:59:59.999999999Z" + NUL */
#define GW_JSON_DURATION_MAX  32 /* "-315576000000.999999999s" + NUL */

/*
 * RFC 3339 "YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|+HH:MM|-HH:MM)" ('t' and 'z' too)
 * into seconds since the epoch and nanos, with the offset applied. The
 * result must lie in 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59.999999999Z.
 * Returns 0, or -1 with *why set (static text).
 */
int gw_json_timestamp_parse(const char *s, size_t n, int64_t *seconds, int32_t *nanos,
                            const char **why);
/* The UTC text of a Timestamp ('Z'; a fraction of 3, 6 or 9 digits only
 * when nanos is not 0) into out; its length, or 0 when out of range. */
size_t gw_json_timestamp_format(int64_t seconds, int32_t nanos, char out[GW_JSON_TIMESTAMP_MAX]);

/* "[-]S[.f{1,9}]s", |S| <= 315576000000; seconds and nanos get the sign.
 * Returns 0, or -1 with *why set. */
int gw_json_duration_parse(const char *s, size_t n, int64_t *seconds, int32_t *nanos,
                           const char **why);
/* Its text ("1.500s", "-0.001s", "3s"), or 0 when out of range or the
 * signs of seconds and nanos differ. */
size_t gw_json_duration_format(int64_t seconds, int32_t nanos, char out[GW_JSON_DURATION_MAX]);

#ifdef __cplusplus
}
#endif

#endif /* PANTHERA_GW_JSON_H */
