/*
 * wire.h - the frames of Panthera's RPC protocol, version 1 (internal).
 *
 * docs/wire-protocol.md is the specification; this is its codec. A request
 * frame carries the method's wire name, a relative timeout, string metadata
 * and the protobuf payload; a reply frame carries a status code, a message,
 * metadata, error details (a serialized panthera.rpc.v1.ErrorDetails) and
 * the payload. Integers are little-endian; every length and count is
 * checked against the bytes present and against the limits below before it
 * is used, and every string against its allowed characters.
 *
 * Decoding is zero-copy for the payload and details (they point into the
 * frame, which must outlive the result) and copies method and metadata
 * strings, NUL-terminated, into the given arena.
 */
#ifndef PANTHERA_RPC_WIRE_H
#define PANTHERA_RPC_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "panthera/rpc.h"

#define RPC_WIRE_MAGIC        0x50u /* 'P' */
#define RPC_WIRE_VERSION      1u
#define RPC_WIRE_KIND_REQUEST 1u
#define RPC_WIRE_KIND_REPLY   2u

#define RPC_WIRE_MAX_METHOD    256u  /* bytes of a method's wire name */
#define RPC_WIRE_MAX_METADATA  64u   /* entries per frame */
#define RPC_WIRE_MAX_KEY       128u  /* bytes of a metadata key */
#define RPC_WIRE_MAX_VALUE     8192u /* bytes of a metadata value */
#define RPC_WIRE_MAX_MESSAGE   4096u /* bytes of a status message */
#define RPC_WIRE_REQUEST_FIXED 8u    /* magic .. timeout */
#define RPC_WIRE_REPLY_FIXED   8u    /* magic .. reserved */

typedef enum rpc_wire_error {
	RPC_WIRE_OK = 0,
	RPC_WIRE_TRUNCATED,    /* a length or count runs past the frame */
	RPC_WIRE_TRAILING,     /* bytes after the last field */
	RPC_WIRE_BAD_MAGIC,    /* not a Panthera frame */
	RPC_WIRE_BAD_VERSION,  /* a version this peer does not speak */
	RPC_WIRE_BAD_KIND,     /* a reply where a request belongs, or the reverse */
	RPC_WIRE_BAD_FLAGS,    /* reserved bits set */
	RPC_WIRE_BAD_METHOD,   /* empty, too long, or not /pkg.Service/Method */
	RPC_WIRE_BAD_METADATA, /* too many entries, a bad key or value */
	RPC_WIRE_BAD_STATUS,   /* a status code outside 0..16 */
	RPC_WIRE_BAD_MESSAGE,  /* a status message too long or not UTF-8 */
	RPC_WIRE_NO_MEMORY,    /* the arena is exhausted */
} rpc_wire_error;

/* A short English description of `e`, static. */
const char *rpc_wire_strerror(rpc_wire_error e);

typedef struct rpc_wire_request {
	uint32_t timeout_ms; /* 0: no deadline */
	const char *method;  /* NUL-terminated, in the arena */
	size_t method_len;
	rpc_metadata_entry *metadata; /* in the arena */
	size_t n_metadata;
	const uint8_t *payload; /* into the frame */
	size_t payload_len;
} rpc_wire_request;

typedef struct rpc_wire_reply {
	rpc_status status;
	const char *message; /* NUL-terminated, in the arena; "" when none */
	rpc_metadata_entry *metadata;
	size_t n_metadata;
	const uint8_t *details; /* into the frame; serialized ErrorDetails */
	size_t details_len;
	const uint8_t *payload;
	size_t payload_len;
} rpc_wire_reply;

/*
 * Decode one metadata block (u16 count, then entries) from buf[0..len).
 * On success sets *used to the bytes it took and the entries (arena copies).
 */
rpc_wire_error rpc_wire_decode_metadata(const uint8_t *buf, size_t len, rpc_arena *arena,
                                        rpc_metadata_entry **entries, size_t *n, size_t *used);

rpc_wire_error rpc_wire_decode_request(const uint8_t *buf, size_t len, rpc_arena *arena,
                                       rpc_wire_request *out);
rpc_wire_error rpc_wire_decode_reply(const uint8_t *buf, size_t len, rpc_arena *arena,
                                     rpc_wire_reply *out);

/*
 * Encoding: the size first, then the bytes into a buffer of at least that
 * size. The sizes are 0 when a field breaks a limit (the caller then
 * answers INVALID_ARGUMENT / INTERNAL); the inputs are not otherwise
 * validated here: callers pass metadata they have checked with
 * rpc_wire_metadata_valid().
 */
size_t rpc_wire_request_size(const char *method, const rpc_metadata_entry *md, size_t n_md,
                             size_t payload_len);
/* Writes everything but the payload, which the caller packs at
 * out + size - payload_len (the payload is always last). */
void rpc_wire_encode_request(uint8_t *out, uint32_t timeout_ms, const char *method,
                             const rpc_metadata_entry *md, size_t n_md, size_t payload_len);

size_t rpc_wire_reply_size(const char *message, const rpc_metadata_entry *md, size_t n_md,
                           size_t details_len, size_t payload_len);
/* Likewise: the payload goes at out + size - payload_len. */
void rpc_wire_encode_reply(uint8_t *out, rpc_status status, const char *message,
                           const rpc_metadata_entry *md, size_t n_md, const uint8_t *details,
                           size_t details_len, size_t payload_len);

/*
 * Make `s` a valid status message in place: cut to at most `max` bytes on a
 * character boundary, bytes that are not UTF-8 become '?', control
 * characters other than tab become ' '. Status messages often quote what a
 * caller sent, which may be anything.
 */
void rpc_wire_text_sanitize(char *s, size_t max);

/* 1 when key and value may travel as metadata (see the specification). */
int rpc_wire_metadata_valid(const char *key, const char *value);

#endif /* PANTHERA_RPC_WIRE_H */
