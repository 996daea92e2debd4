/*
 * gw_accesslog.h - the REST gateway's access log: one JSON line per request.
 *
 * A line has the shape of services/common's log.h lines (ts, level,
 * event, request_id), so one log pipeline reads both:
 *   {"ts":"2026-01-15T10:00:00.123Z","level":"info","event":"http.access",
 *    "request_id":"4bf9...","method":"GET","route":"/v1/products/{product_id}",
 *    "status":200,"duration_ms":1.234,"bytes_in":0,"bytes_out":512,
 *    "client":"203.0.113.7","user_id":"3f0c...","cache":"hit"}
 * `route` is the route's template, never the request's path or query:
 * ids and search text stay out of the log, and the field has few values.
 * A request no route took logs "route":"" (404, 405, 400, the server's own
 * paths name theirs). There is no field for a header or a body: the
 * Authorization field, tokens and passwords cannot reach the log through
 * this module. Every string is escaped for JSON (quotes, backslashes,
 * control characters as \u00XX, bytes that are not UTF-8 as U+FFFD) and
 * cut to a bound; the whole line is at most GW_ACCESS_LINE_MAX bytes.
 *
 * Cost: formatting uses the caller's stack only (no malloc), the
 * timestamp's text is reused within a second per thread, and a line is one
 * write(2) (atomic for pipes up to PIPE_BUF, which the line bound respects;
 * O_APPEND files append whole lines).
 *
 * Thread-safety: a gw_access_log is read-only after gw_access_log_open();
 * any number of threads write lines at once. gw_access_log_format() keeps
 * no state but the per-thread timestamp text.
 */
#ifndef PANTHERA_GW_ACCESSLOG_H
#define PANTHERA_GW_ACCESSLOG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "panthera/rpc_status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define GW_ACCESS_LINE_MAX 4096u /* bytes of a line, its '\n' included (PIPE_BUF) */
#define GW_ACCESS_ADDR_MAX 48u   /* bytes of gw_access_format_addr()'s text */

/* One request, as the pipeline saw it. Strings are NUL-terminated; only
 * their first bytes up to each field's cut are read. A NULL string is
 * written as absent or "" (see each field). */
typedef struct gw_access_entry {
	/* When the request arrived (CLOCK_REALTIME), for "ts"; {0, 0}: now. */
	int64_t start_sec;
	long start_nsec;
	/* Request method ("GET"); cut at 32 bytes. NULL: "". */
	const char *method;
	/* The route's template (rpc_http_route.path_template) or the server's
	 * own path ("/healthz"); NULL: "" (no route). Cut at 256 bytes. */
	const char *route;
	/* HTTP status sent. */
	int status;
	/* From arrival to the answer handed to the server, in nanoseconds;
	 * written as milliseconds with microsecond precision ("1.234"). */
	uint64_t duration_ns;
	/* The request id (NUL-terminated; cut at 128 bytes). NULL: absent. */
	const char *request_id;
	/* The caller (the token's subject), NUL-terminated, cut at 64 bytes.
	 * NULL: absent (an anonymous request). */
	const char *user_id;
	/* Bytes of the request body received, and of the response body sent. */
	uint64_t bytes_in, bytes_out;
	/* The client's address as text (see gw_access_format_addr()), NUL-
	 * terminated, cut at 64 bytes. NULL: absent. */
	const char *client;
	/* "hit", "miss" or "bypass" for cacheable routes; NULL: absent. */
	const char *cache;
} gw_access_entry;

/*
 * Write the line of `e` into buf (cap bytes): the JSON object and a '\n',
 * NUL-terminated when there is room. Strings are cut, never the line's
 * structure: any cap >= GW_ACCESS_LINE_MAX holds every line whole.
 * Returns the line's length ('\n' included, NUL not), or 0 when cap is
 * under GW_ACCESS_LINE_MAX or an argument is NULL.
 */
size_t gw_access_log_format(const gw_access_entry *e, char *buf, size_t cap);

/*
 * The text of a socket address for the log: "203.0.113.7", "2001:db8::1",
 * an IPv4-mapped IPv6 address as its IPv4 form; "" for another family or
 * NULL. buf: GW_ACCESS_ADDR_MAX bytes, NUL-terminated. Returns the length.
 */
size_t gw_access_format_addr(const struct sockaddr *sa, socklen_t len,
                             char buf[GW_ACCESS_ADDR_MAX]);

typedef struct gw_access_log gw_access_log;

/*
 * An access log writing to `fd` (2 for standard error, where log.h writes;
 * or a file the caller opened with O_APPEND). The log does not own fd
 * unless `own` is 1 (then gw_access_log_close() closes it).
 * out: OUT, the log; NULL on error.
 * Returns OK, INVALID_ARGUMENT (fd < 0, out NULL) or RESOURCE_EXHAUSTED.
 */
rpc_status gw_access_log_open(int fd, int own, gw_access_log **out);

/* Close (when owned) and free. NULL is harmless. After every writer is done. */
void gw_access_log_close(gw_access_log *log);

/*
 * Format `e` and write the line with one write(2), retried on EINTR.
 * Returns OK, INVALID_ARGUMENT (NULL), or UNAVAILABLE when the write failed
 * or was short (the line is lost; counted, see gw_access_log_dropped()).
 */
rpc_status gw_access_log_write(gw_access_log *log, const gw_access_entry *e);

/* Lines lost to failed writes since open. */
uint64_t gw_access_log_dropped(const gw_access_log *log);

#ifdef __cplusplus
}
#endif

#endif /* PANTHERA_GW_ACCESSLOG_H */
