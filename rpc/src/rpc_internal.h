/*
 * rpc_internal.h - what the files of the RPC runtime share (internal).
 */
#ifndef PANTHERA_RPC_INTERNAL_H
#define PANTHERA_RPC_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include <nng/nng.h>

#include "arena.h"
#include "panthera/rpc.h"
#include "panthera/rpc/v1/rpc.pb-c.h"
#include "wire.h"

#define RPC_DEFAULT_MAX_MESSAGE (4u * 1024u * 1024u)
#define RPC_CALL_INLINE_ARENA   4096u
#define RPC_MAX_REPLY_METADATA  64u
#define RPC_MAX_SERVICES        64u

/* Monotonic microseconds. */
uint64_t rpc_now_us(void);

/* The status an nng error stands for, on the client side. */
rpc_status rpc_status_from_nng(int rv);

/* Load a certificate (chain) and its key from two PEM files into `cfg`.
 * Returns 0 or an nng error. */
struct nng_tls_config;
int rpc_tls_own_cert(struct nng_tls_config *cfg, const char *cert_file, const char *key_file);

/* ---- per-method counters ---- */

typedef struct rpc_method_stats {
	const char *method; /* wire name; "" for unknown methods */
	_Atomic uint64_t calls[RPC_STATUS_COUNT];
	_Atomic uint64_t total_us[RPC_STATUS_COUNT];
} rpc_method_stats;

void rpc_stats_record(rpc_method_stats *s, rpc_status st, uint64_t us);
void rpc_stats_report(const rpc_method_stats *s, rpc_metrics_fn fn, void *arg);

/* ---- the error details a call builds ---- */

typedef struct rpc_details_builder {
	Google__Rpc__ErrorInfo info;
	Google__Rpc__BadRequest bad;
	Panthera__Rpc__V1__ErrorDetails details;
	Google__Rpc__BadRequest__FieldViolation **violations;
	size_t n_violations, cap_violations;
} rpc_details_builder;

/* ---- a call on the server ---- */

struct rpc_call {
	const rpc_method_desc *method;
	uint64_t deadline_us; /* 0: none */
	const rpc_metadata_entry *metadata;
	size_t n_metadata;
	rpc_metadata_entry reply_md[RPC_MAX_REPLY_METADATA];
	size_t n_reply_md;
	char *message; /* status message, arena */
	rpc_details_builder details;
	rpc_arena arena;
	unsigned char inline_arena[RPC_CALL_INLINE_ARENA];
};

/* Reset a call for reuse: everything it allocated is freed. */
void rpc_call_reset(rpc_call *call);
void rpc_call_init(rpc_call *call, size_t memory_limit);

/*
 * Encode the reply of `call` with `status` and the packed `resp` (NULL when
 * the status is not OK) into a new nng message. On a failure to encode
 * (reply too big, no memory), a smaller reply with INTERNAL or
 * RESOURCE_EXHAUSTED is made instead; NULL only when even that fails.
 * *sent receives the status actually encoded.
 */
nng_msg *rpc_call_encode_reply(rpc_call *call, rpc_status status, const ProtobufCMessage *resp,
                               size_t max_message, rpc_status *sent);

/* A reply frame with just a status and message (no call needed). */
nng_msg *rpc_encode_status_reply(rpc_status status, const char *message);

/* ---- a reply on the client ---- */

struct rpc_reply {
	rpc_status status;
	const char *message;
	const rpc_metadata_entry *metadata;
	size_t n_metadata;
	const ProtobufCMessage *payload;
	Panthera__Rpc__V1__ErrorDetails *details;
	rpc_arena arena;
	unsigned char inline_arena[1024];
};

/* A reply holding only a status and a message (copied). NULL when no memory. */
rpc_reply *rpc_reply_new_status(rpc_status status, const char *message);

/* Decode a reply frame for `method` into a new reply; never NULL unless out
 * of memory; decoding errors become an INTERNAL reply saying why. */
rpc_reply *rpc_reply_decode(const rpc_method_desc *method, const uint8_t *frame, size_t len,
                            size_t max_message);

/* Error details larger than this are dropped by the client, unread. */
#define RPC_MAX_DETAILS (64u * 1024u)

/*
 * Reflection (reflection.c): register panthera.reflection.v1.ServerReflection
 * on `srv`, answering from the services registered on it.
 */
rpc_status rpc_reflection_register(rpc_server *srv);

/*
 * The services registered on `srv`, in registration order, into
 * out[0..cap); returns how many there are (which may exceed cap). Fixed
 * once the server has started, so handlers may call it without a lock.
 */
size_t rpc_server_services(rpc_server *srv, const rpc_service_desc **out, size_t cap);

#endif /* PANTHERA_RPC_INTERNAL_H */
