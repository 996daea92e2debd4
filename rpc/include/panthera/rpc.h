/*
 * rpc.h - Panthera's RPC runtime: the types generated code is built on.
 *
 * Generated stubs (gen/, from protoc-gen-panthera) and the runtime meet here.
 * For every service the generator emits one constant rpc_service_desc whose
 * methods carry the protobuf-c descriptors of their messages and a typed
 * trampoline; the server dispatches through it, the gateway and the CLI read
 * it, and the typed client stubs pass its methods to rpc_channel_call().
 * The HTTP bindings (rpc_http_route) live in a route table generated for the
 * whole set of protos; see rpc_route.h.
 *
 * Objects (all opaque, created and destroyed by the runtime):
 *   rpc_server   serves registered services on one or more nng URLs.
 *   rpc_channel  a client connection to one or more servers; thread-safe.
 *   rpc_call     one call being served: deadline, metadata, arena, reply
 *                details. Valid only during the handler that receives it.
 *   rpc_reply    the outcome of one client call: status, message, details,
 *                and the decoded response, which it owns.
 *
 * Ownership in one line each:
 *   - a handler's request is read-only and dies with the call; the response
 *     message is allocated and initialised by the runtime, and whatever the
 *     handler hangs off it must come from rpc_call_alloc() (the call arena),
 *     which frees everything when the reply has been sent;
 *   - a client's rpc_reply owns the response it points at; rpc_reply_free()
 *     releases both.
 *
 * The functions declared below the "runtime" marker are implemented by the
 * RPC runtime (rpc/src); see docs/writing-a-service.md for a walk-through.
 */
#ifndef PANTHERA_RPC_H
#define PANTHERA_RPC_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "panthera/rpc_status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rpc_server rpc_server;
typedef struct rpc_channel rpc_channel;
typedef struct rpc_call rpc_call;
typedef struct rpc_reply rpc_reply;

/* Method flags (rpc_method_desc.flags). */
enum {
	/* Safe to run twice: the proto declares idempotency_level
	 * NO_SIDE_EFFECTS or IDEMPOTENT, or the method is bound to HTTP GET.
	 * Only such calls may be retried by a channel. */
	RPC_METHOD_IDEMPOTENT = 1u << 0,
	/* The proto declares NO_SIDE_EFFECTS, or the method is bound to GET. */
	RPC_METHOD_NO_SIDE_EFFECTS = 1u << 1,
	/* The method is marked `deprecated` in its proto. */
	RPC_METHOD_DEPRECATED = 1u << 2,
};

/*
 * The typed-handler trampoline the generator emits for each method: it casts
 * `handlers` to the service's handler struct, and the messages to their
 * generated types, and calls the handler the service registered. Returns
 * RPC_STATUS_UNIMPLEMENTED, without touching `call`, when that handler is NULL.
 *
 * handlers: the struct given to the service's _register() function.
 * user:     the pointer given along with it.
 * req:      the decoded request, of the method's input type.
 * resp:     the response, of the method's output type, already initialised.
 */
typedef rpc_status (*rpc_invoke_fn)(const void *handlers, void *user, rpc_call *call,
                                    const ProtobufCMessage *req, ProtobufCMessage *resp);

/* One method of a service. Generated; constant for the life of the program. */
typedef struct rpc_method_desc {
	/* "/panthera.catalog.v1.CatalogService/GetProduct": the name on the wire. */
	const char *path;
	/* "GetProduct". */
	const char *name;
	/* Message descriptors of the request and the response. */
	const ProtobufCMessageDescriptor *input;
	const ProtobufCMessageDescriptor *output;
	/* RPC_METHOD_* bits. */
	uint32_t flags;
	/* Calls the typed handler; see rpc_invoke_fn. */
	rpc_invoke_fn invoke;
} rpc_method_desc;

/* One service. Generated; constant for the life of the program. */
typedef struct rpc_service_desc {
	/* "panthera.catalog.v1.CatalogService". */
	const char *name;
	/* "panthera/catalog/v1/catalog.proto": the file that declares it. */
	const char *proto_file;
	/* The methods, in declaration order; method i is methods[i]. */
	const rpc_method_desc *methods;
	size_t n_methods;
} rpc_service_desc;

/*
 * Find a method of `svc` by its short name ("GetProduct"). Returns NULL when
 * there is none, or when either argument is NULL. Pure; any thread.
 */
const rpc_method_desc *rpc_service_find_method(const rpc_service_desc *svc, const char *name);

/* Per-call options of a client call. Zeroed means the defaults. */
typedef struct rpc_metadata_entry {
	const char *key;   /* lower-case ASCII, e.g. "x-request-id" */
	const char *value; /* any UTF-8 string */
} rpc_metadata_entry;

typedef struct rpc_call_opts {
	/* Relative deadline in milliseconds; 0 uses the channel's default. */
	uint32_t timeout_ms;
	/* Metadata sent with the request; copied before the call returns. */
	const rpc_metadata_entry *metadata;
	size_t n_metadata;
	/* Retries on UNAVAILABLE, honoured only for RPC_METHOD_IDEMPOTENT
	 * methods; 0 means none. */
	uint32_t max_retries;
} rpc_call_opts;

/*
 * Completion of an asynchronous call. Called exactly once per call that was
 * started successfully, from a runtime thread, on success, error, deadline
 * and cancellation alike. The callee owns `reply` and frees it with
 * rpc_reply_free(). `reply` is NULL only when the runtime could not allocate
 * one; treat that as RPC_STATUS_RESOURCE_EXHAUSTED.
 */
typedef void (*rpc_reply_fn)(rpc_reply *reply, void *arg);

/* ---- runtime (implemented in rpc/src) ---------------------------------- */

/*
 * Register `svc` on `srv` with its handler struct. `handlers` and `user` must
 * stay valid until the server is destroyed; the generated
 * <service>_register() functions call this with their typed struct.
 * Returns RPC_STATUS_ALREADY_EXISTS when a service of that name is already
 * registered, RPC_STATUS_FAILED_PRECONDITION once the server has started,
 * RPC_STATUS_INVALID_ARGUMENT on a NULL argument.
 */
rpc_status rpc_server_add_service(rpc_server *srv, const rpc_service_desc *svc,
                                  const void *handlers, void *user);

/*
 * Call `method` synchronously. Blocks until the reply, the deadline or a
 * transport failure. Returns the call's status, and stores in *reply (always,
 * on every path) an rpc_reply to free with rpc_reply_free(); *reply is NULL
 * only when even that allocation failed (status RESOURCE_EXHAUSTED).
 * `reply` must not be NULL (RPC_STATUS_INVALID_ARGUMENT, nothing sent);
 * `opts` may be NULL. Thread-safe: any number of threads may call at once.
 */
rpc_status rpc_channel_call(rpc_channel *ch, const rpc_method_desc *method,
                            const ProtobufCMessage *req, const rpc_call_opts *opts,
                            rpc_reply **reply);

/*
 * Start `method` asynchronously. On RPC_STATUS_OK, `done` will be called
 * exactly once with the reply. On any other return (bad argument, no memory,
 * channel closed) `done` is never called. `req` is encoded and `opts` copied
 * before this returns, so the caller may free both at once; `opts` may be
 * NULL.
 */
rpc_status rpc_channel_call_async(rpc_channel *ch, const rpc_method_desc *method,
                                  const ProtobufCMessage *req, const rpc_call_opts *opts,
                                  rpc_reply_fn done, void *arg);

/* The reply's status; RESOURCE_EXHAUSTED for a NULL reply. */
rpc_status rpc_reply_status(const rpc_reply *reply);

/* The reply's status message ("" when none); static text for a NULL reply. */
const char *rpc_reply_message(const rpc_reply *reply);

/*
 * The decoded response when the status is OK, of the method's output type;
 * NULL otherwise, and NULL for a NULL reply. Owned by the reply.
 */
const ProtobufCMessage *rpc_reply_payload(const rpc_reply *reply);

/* Free a reply and the response it owns. NULL is harmless. */
void rpc_reply_free(rpc_reply *reply);

/*
 * Allocate `size` bytes from the call's arena, aligned for any type, freed
 * when the call ends. Returns NULL on exhaustion (the handler then returns
 * RPC_STATUS_RESOURCE_EXHAUSTED). Only from the thread running the handler.
 */
void *rpc_call_alloc(rpc_call *call, size_t size);

#ifdef __cplusplus
}
#endif

#endif /* PANTHERA_RPC_H */
