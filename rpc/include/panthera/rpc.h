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
 * The functions below the "runtime" marker are the RPC runtime (rpc/src),
 * on nng; docs/writing-a-service.md walks through a service and
 * docs/wire-protocol.md specifies the bytes between client and server.
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

/*
 * One .proto file as protoc compiled it, for reflection. Generated; constant
 * for the life of the program.
 */
typedef struct rpc_file_descriptor {
	/* "panthera/catalog/v1/catalog.proto": the name imports use. */
	const char *name;
	/* A serialized google.protobuf.FileDescriptorProto, without its
	 * source_code_info (comments and positions are left out). */
	const uint8_t *data;
	size_t len;
} rpc_file_descriptor;

/* One service. Generated; constant for the life of the program. */
typedef struct rpc_service_desc {
	/* "panthera.catalog.v1.CatalogService". */
	const char *name;
	/* "panthera/catalog/v1/catalog.proto": the file that declares it. */
	const char *proto_file;
	/* The methods, in declaration order; method i is methods[i]. */
	const rpc_method_desc *methods;
	size_t n_methods;
	/* proto_file and every file it imports, transitively, each file before
	 * the files that import it (so proto_file comes last): what reflection
	 * answers. NULL and 0 in a descriptor written by hand, which reflection
	 * then lists without descriptors. */
	const rpc_file_descriptor *files;
	size_t n_files;
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
	/* Retries after a transport failure (no reply: no server reachable,
	 * connection lost), only for RPC_METHOD_IDEMPOTENT methods and within
	 * the deadline; a reply with any status is never retried. 0: none. */
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
 * Servers. A server binds one or more nng URLs (inproc://, ipc://, tcp://,
 * tls+tcp://), serves the services registered on it with a pool of worker
 * threads, and always answers the health service grpc.health.v1.Health
 * and reflection, panthera.reflection.v1.ServerReflection (the names of the
 * registered services and the FileDescriptorSet of their .proto files, from
 * rpc_service_desc.files; proto/panthera/reflection/v1/reflection.proto).
 *
 * Life cycle: rpc_server_create(), then any number of rpc_server_add_service()
 * (usually through the generated <service>_register()) and
 * rpc_server_add_interceptor(), then rpc_server_listen() for each URL, then
 * rpc_server_start(); rpc_server_stop() drains, rpc_server_destroy() frees.
 * Registration after start is refused. All functions but destroy are
 * thread-safe once the server has started.
 */
typedef struct rpc_server_opts {
	/* Handler threads: how many calls run at once. 0: 4. */
	uint32_t workers;
	/* Calls that may wait for a worker; one more gets RESOURCE_EXHAUSTED at
	 * once instead of waiting. 0: 64. */
	uint32_t queue_len;
	/* Largest request payload, and largest reply payload, in bytes.
	 * Larger requests are answered RESOURCE_EXHAUSTED. 0: 4 MiB. */
	size_t max_message;
	/* Most memory one call's arena may take (decoded request, handler
	 * allocations, encoded reply). 0: 8 * max_message + 1 MiB. */
	size_t max_call_memory;
	/* For tls+tcp:// listeners: PEM files of the server's certificate
	 * (chain) and key, and optionally of a CA whose certificates clients
	 * must present (mutual TLS). NULL when unused. Read at listen time. */
	const char *tls_cert_file;
	const char *tls_key_file;
	const char *tls_client_ca_file;
	/* 1: run handlers on nng's I/O threads as requests arrive, without the
	 * hand-off to a worker thread (one thread wake less per call). Only for
	 * servers whose handlers never block: no database, no file, no call to
	 * another service. `workers` and `queue_len` still bound the calls in
	 * progress. 0 (the default): worker threads. */
	int inline_handlers;
} rpc_server_opts;

/*
 * Create a server. `opts` may be NULL (defaults); it is copied. On success
 * *out is the server; on error *out is NULL and the status says why
 * (RESOURCE_EXHAUSTED: no memory; INTERNAL: nng refused a socket).
 */
rpc_status rpc_server_create(rpc_server **out, const rpc_server_opts *opts);

/*
 * Listen on `url`. Before or after start. INVALID_ARGUMENT for a URL nng
 * does not take, UNAVAILABLE when the address is in use, FAILED_PRECONDITION
 * after stop, INVALID_ARGUMENT when a TLS file cannot be read.
 */
rpc_status rpc_server_listen(rpc_server *srv, const char *url);

/* Start the workers and begin answering. FAILED_PRECONDITION when started
 * already. */
rpc_status rpc_server_start(rpc_server *srv);

/*
 * Drain and stop: from now on every new call, health checks included, is
 * answered UNAVAILABLE; calls already queued or running finish and their
 * replies are sent, for at most `drain_ms` milliseconds; then the socket
 * closes, once every running handler has returned (even past drain_ms: a
 * handler is never cut off), queued calls not started by then are dropped
 * unrun. Then this returns. Safe to call more than
 * once, and from any thread but a handler's.
 */
void rpc_server_stop(rpc_server *srv, uint32_t drain_ms);

/* Stop (with no drain time) if needed, and free the server. NULL is
 * harmless. Not from a handler. */
void rpc_server_destroy(rpc_server *srv);

/*
 * Set what the health service answers for `service` ("" for the whole
 * server): 1 for SERVING, 0 for NOT_SERVING. Every registered service starts
 * SERVING once the server starts. RESOURCE_EXHAUSTED when no memory.
 */
rpc_status rpc_server_set_serving(rpc_server *srv, const char *service, int serving);

/*
 * Server interceptors, run on the worker thread in the order added: each
 * `before` sees the call (method, metadata) before the handler and may
 * refuse it by returning a status other than OK (the handler and the later
 * interceptors are then skipped; set a message with rpc_call_error()); each
 * `after` sees the final status, even of refused calls. Either may be NULL.
 * Only before start; FAILED_PRECONDITION after.
 */
typedef rpc_status (*rpc_server_before_fn)(rpc_call *call, void *arg);
typedef void (*rpc_server_after_fn)(rpc_call *call, rpc_status status, void *arg);
rpc_status rpc_server_add_interceptor(rpc_server *srv, rpc_server_before_fn before,
                                      rpc_server_after_fn after, void *arg);

/*
 * Per-method counters: calls by final status and their total handling time.
 * `fn` runs once per (method, status) pair with a non-zero count, under a
 * lock: it must not call into the server. Methods are wire names
 * ("/pkg.Service/Method"); "" collects calls to unknown methods.
 */
typedef void (*rpc_metrics_fn)(const char *method, rpc_status status, uint64_t calls,
                               uint64_t total_us, void *arg);
void rpc_server_metrics(rpc_server *srv, rpc_metrics_fn fn, void *arg);

/*
 * The call being handled. Valid only during the handler (or interceptor)
 * that receives it, and only on that thread.
 */

/* The method being called. */
const rpc_method_desc *rpc_call_method(const rpc_call *call);

/* Milliseconds left before the caller's deadline (0 when it has passed);
 * UINT32_MAX when the caller set none. */
uint32_t rpc_call_remaining_ms(const rpc_call *call);

/* The first value of request metadata `key` (lower case), or NULL. */
const char *rpc_call_metadata(const rpc_call *call, const char *key);

/* All request metadata; *n receives the count. Owned by the call. */
const rpc_metadata_entry *rpc_call_metadata_all(const rpc_call *call, size_t *n);

/*
 * Add reply metadata. Both strings are copied. INVALID_ARGUMENT for a key
 * outside [a-z0-9-_.] (1..128 bytes) or a value that is not text of at most
 * 8192 bytes; RESOURCE_EXHAUSTED past 64 entries or without memory.
 */
rpc_status rpc_call_set_reply_metadata(rpc_call *call, const char *key, const char *value);

/*
 * Set the reply's status message (printf-style; cut at 4096 bytes) and
 * return `code`, so a handler can `return rpc_call_error(call,
 * RPC_STATUS_NOT_FOUND, "product %s not found", id);`. The message reaches
 * callers: never put secrets, SQL or stack traces in it.
 */
rpc_status rpc_call_error(rpc_call *call, rpc_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Attach a google.rpc.ErrorInfo detail (reason such as "NOT_A_BUYER", and a
 * domain; domain NULL means "panthera.dev"). Copied. */
rpc_status rpc_call_set_error_reason(rpc_call *call, const char *reason, const char *domain);

/* Add a google.rpc.BadRequest field violation. Copied. */
rpc_status rpc_call_add_field_violation(rpc_call *call, const char *field, const char *description);

/*
 * Client channels. A channel dials one or more URLs and spreads calls over
 * the peers that are connected; it reconnects by itself when a peer comes
 * back. Thread-safe: any number of threads may call on one channel.
 */
typedef struct rpc_channel_opts {
	/* Deadline of calls whose rpc_call_opts.timeout_ms is 0. 0: 10000. */
	uint32_t default_timeout_ms;
	/* How long a call waits for a first connection when none is up
	 * before answering UNAVAILABLE. 0: 1000. */
	uint32_t connect_wait_ms;
	/* Largest request or reply payload. 0: 4 MiB. */
	size_t max_message;
	/* For tls+tcp:// URLs: the PEM CA that signs the servers'
	 * certificates (required), the server name to check (NULL: the URL's
	 * host), and a client certificate and key for mutual TLS (NULL: none). */
	const char *tls_ca_file;
	const char *tls_server_name;
	const char *tls_cert_file;
	const char *tls_key_file;
} rpc_channel_opts;

/*
 * Open a channel to `urls[0..n_urls)`. Dialing is in the background: a
 * server that is not up yet is retried. `opts` may be NULL; copied.
 * INVALID_ARGUMENT for a URL nng does not take or an unreadable TLS file.
 */
rpc_status rpc_channel_open(rpc_channel **out, const char *const *urls, size_t n_urls,
                            const rpc_channel_opts *opts);

/*
 * Close the channel: calls in flight complete with UNAVAILABLE (their
 * callbacks run before this returns), then it is freed. NULL is harmless.
 * Not from an asynchronous call's callback.
 */
void rpc_channel_close(rpc_channel *ch);

/* Client interceptors, as on the server: `before` runs before the request
 * is sent and may add metadata to `md` (up to `md_cap` entries, strings
 * that must outlive the call) and return their count; `after` sees the
 * outcome. Only before the first call. */
typedef size_t (*rpc_client_before_fn)(const rpc_method_desc *method, rpc_metadata_entry *md,
                                       size_t md_cap, void *arg);
typedef void (*rpc_client_after_fn)(const rpc_method_desc *method, rpc_status status,
                                    uint64_t elapsed_us, void *arg);
rpc_status rpc_channel_add_interceptor(rpc_channel *ch, rpc_client_before_fn before,
                                       rpc_client_after_fn after, void *arg);

/* Per-method counters of calls made on the channel; see rpc_server_metrics. */
void rpc_channel_metrics(rpc_channel *ch, rpc_metrics_fn fn, void *arg);

/* Requests the channel sent again after an attempt failed UNAVAILABLE (the
 * peer it was sent to lost, or none connected; idempotent methods with
 * rpc_call_opts.max_retries only), since it opened. */
uint64_t rpc_channel_retries(rpc_channel *ch);

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

/* The first value of reply metadata `key`, or NULL. */
const char *rpc_reply_metadata(const rpc_reply *reply, const char *key);

/* The ErrorInfo reason the server attached ("" when none). */
const char *rpc_reply_error_reason(const rpc_reply *reply);

/*
 * The error details as the server sent them: a decoded
 * panthera.rpc.v1.ErrorDetails (see gen/panthera/rpc/v1/rpc.pb-c.h), or NULL
 * when there are none. Owned by the reply.
 */
const ProtobufCMessage *rpc_reply_details(const rpc_reply *reply);

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
