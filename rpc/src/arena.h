/*
 * arena.h - the per-call memory arena of the RPC runtime (internal).
 *
 * One arena per call: the request is decoded into it (it is handed to
 * protobuf-c as a ProtobufCAllocator), the handler allocates its response
 * from it, the reply is encoded, and rpc_arena_reset() frees everything in
 * one go, running the cleanup hooks registered on it (PQclear, OpenSSL
 * frees, ...) in reverse order first. Modelled on PostgreSQL's memory
 * contexts, without their global state: the arena is always passed.
 *
 * Memory comes from an inline first block, then from malloc'd blocks that
 * double in size. A limit bounds the total, so a hostile request cannot make
 * one call take more than the server allows. Allocation failure returns
 * NULL; nothing here aborts.
 *
 * Not thread-safe: an arena belongs to the one thread running its call.
 */
#ifndef PANTHERA_RPC_ARENA_H
#define PANTHERA_RPC_ARENA_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

typedef struct rpc_arena_block rpc_arena_block;
typedef struct rpc_arena_cleanup rpc_arena_cleanup;

typedef struct rpc_arena {
	rpc_arena_block *blocks;     /* malloc'd blocks, newest first */
	unsigned char *pos, *end;    /* free space of the current block */
	unsigned char *inline_start; /* the caller's first block, or NULL */
	size_t inline_size;
	size_t used;  /* bytes handed out plus block overheads, for the limit */
	size_t limit; /* 0: none */
	size_t next_block;
	int exhausted;               /* an allocation failed since the last reset */
	rpc_arena_cleanup *cleanups; /* newest first */
	ProtobufCAllocator pb;       /* protobuf-c's view of this arena */
} rpc_arena;

/*
 * Initialise an arena. `first`/`first_size` is an optional first block (for
 * example inside the call object), may be NULL/0. `limit` bounds the bytes
 * the arena may take from malloc and hand out, 0 for no bound.
 */
void rpc_arena_init(rpc_arena *a, void *first, size_t first_size, size_t limit);

/* `size` bytes aligned for any type; NULL when out of memory or over the
 * limit. A size of 0 gives a valid unique pointer. */
void *rpc_arena_alloc(rpc_arena *a, size_t size);

/* n * size bytes, zeroed; NULL on overflow, out of memory or over the limit. */
void *rpc_arena_calloc(rpc_arena *a, size_t n, size_t size);

/* A NUL-terminated copy of s[0..n). NULL when out of memory. */
char *rpc_arena_strndup(rpc_arena *a, const char *s, size_t n);

/*
 * Run fn(arg) when the arena is reset or destroyed, after the hooks
 * registered later. Returns 0, or -1 when the hook could not be recorded
 * (out of memory); the caller must then clean up itself.
 */
int rpc_arena_on_reset(rpc_arena *a, void (*fn)(void *), void *arg);

/* Run the cleanup hooks, free every malloc'd block; the arena is then empty
 * and ready for reuse, with the same first block and limit. */
void rpc_arena_reset(rpc_arena *a);

/* rpc_arena_reset(), for an arena not reused. */
void rpc_arena_destroy(rpc_arena *a);

#endif /* PANTHERA_RPC_ARENA_H */
