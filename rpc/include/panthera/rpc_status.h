/*
 * rpc_status.h - the canonical status codes of every Panthera call.
 *
 * One list (RPC_STATUS_LIST) yields the enum, the names and the HTTP mapping,
 * so the three can never disagree. The numbers are the 17 canonical codes
 * that gRPC and google.rpc.Code use; they travel on the wire and never change
 * meaning. Version 1 of the wire protocol carries only these 17; a new code
 * would come with a new protocol version (docs/wire-protocol.md).
 *
 * Thread-safety: every function here is pure and may be called from any
 * thread.
 */
#ifndef PANTHERA_RPC_STATUS_H
#define PANTHERA_RPC_STATUS_H

/* X(enum suffix, number, HTTP status) */
#define RPC_STATUS_LIST(X)             \
	X(OK, 0, 200)                  \
	X(CANCELLED, 1, 499)           \
	X(UNKNOWN, 2, 500)             \
	X(INVALID_ARGUMENT, 3, 400)    \
	X(DEADLINE_EXCEEDED, 4, 504)   \
	X(NOT_FOUND, 5, 404)           \
	X(ALREADY_EXISTS, 6, 409)      \
	X(PERMISSION_DENIED, 7, 403)   \
	X(RESOURCE_EXHAUSTED, 8, 429)  \
	X(FAILED_PRECONDITION, 9, 400) \
	X(ABORTED, 10, 409)            \
	X(OUT_OF_RANGE, 11, 400)       \
	X(UNIMPLEMENTED, 12, 501)      \
	X(INTERNAL, 13, 500)           \
	X(UNAVAILABLE, 14, 503)        \
	X(DATA_LOSS, 15, 500)          \
	X(UNAUTHENTICATED, 16, 401)

typedef enum rpc_status {
#define RPC_STATUS_ENUM_(name, num, http) RPC_STATUS_##name = num,
	RPC_STATUS_LIST(RPC_STATUS_ENUM_)
#undef RPC_STATUS_ENUM_
} rpc_status;

/* Number of canonical codes; valid codes are 0 .. RPC_STATUS_COUNT - 1. */
#define RPC_STATUS_COUNT 17

/*
 * The code's canonical name, as in "NOT_FOUND". A value outside the list
 * (say, a number read off the wire from a newer peer) gives "UNKNOWN".
 * Never returns NULL; the string is static.
 */
const char *rpc_status_name(rpc_status code);

/*
 * The HTTP status the REST gateway answers with for `code` (API.md's
 * canonical mapping: NOT_FOUND -> 404, UNAVAILABLE -> 503, ...). A value
 * outside the list maps as UNKNOWN does, to 500.
 */
int rpc_status_http(rpc_status code);

/*
 * Parse a canonical name ("NOT_FOUND") into *out. Returns 1 when the name is
 * one of the 17, else 0 and leaves *out alone. `name` may be NULL (returns 0).
 */
int rpc_status_from_name(const char *name, rpc_status *out);

#endif /* PANTHERA_RPC_STATUS_H */
