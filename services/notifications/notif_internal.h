/*
 * notif_internal.h - what the notifications service's files share
 * (internal): the private state, the templates, the SQL, text helpers.
 */
#ifndef PANTHERA_NOTIF_INTERNAL_H
#define PANTHERA_NOTIF_INTERNAL_H

#include <pthread.h>
#include <stdarg.h>

#include "notifications.h"

#define NOTIF_DEFAULT_TIMEOUT_MS 10000u
#define NOTIF_DEFAULT_ATTEMPTS   8u
#define NOTIF_DEFAULT_RETRY_MS   30000u
#define NOTIF_MAX_RETRY_MS       3600000u
#define NOTIF_BATCH              16

struct notifications_private {
	notifications_sink *sink;     /* the sink in use */
	notifications_sink *own_sink; /* the one init opened (NULL: the caller's) */
	ev_consumer *orders;          /* NULL without orders_events */
	pthread_mutex_t consume_lock; /* one ev_consume_once at a time */
	/* the background threads */
	pthread_mutex_t lock;
	pthread_cond_t wake; /* stop, or new notifications to deliver */
	int started, with_consumer;
	int recorded; /* notifications recorded since the delivery thread looked */
	atomic_int stopping;
	pthread_t consumer_thread, delivery_thread;
};

/* ---- text (text.c) ---- */

/* A growing NUL-terminated string; after an allocation failure `failed`
 * is set and further appends do nothing. */
typedef struct notif_buf {
	char *s;
	size_t len, cap;
	int failed;
} notif_buf;

void notif_buf_put(notif_buf *b, const char *s, size_t n);
void notif_buf_puts(notif_buf *b, const char *s);
void notif_buf_printf(notif_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append text from the outside world: at most `max` bytes, cut at a
 * character boundary; control characters become spaces and bytes that are
 * not UTF-8 become '?'. */
void notif_buf_put_text(notif_buf *b, const char *s, size_t max);
/* Take the string (the caller frees it); NULL after a failure. */
char *notif_buf_take(notif_buf *b);
void notif_buf_free(notif_buf *b);

/* ---- templates (render.c) ---- */

typedef struct notif_rendered {
	const char *template; /* "order_placed", ... (static) */
	char user_id[37];
	char order_id[37];
	char *subject;   /* malloc'd */
	char *body;      /* malloc'd */
	const char *bad; /* on INVALID_ARGUMENT: what was wrong (static) */
} notif_rendered;

/*
 * Render the notification of the event of type `type` (full name) and
 * protobuf `payload`; `occurred_at` (RFC 3339, may be NULL) stands in for
 * missing times. NOT_FOUND when `type` is no order event (nothing to do),
 * INVALID_ARGUMENT for a payload that does not decode or carries a bad id,
 * amount or currency, RESOURCE_EXHAUSTED without memory. On OK free `out`
 * with notif_rendered_free().
 */
rpc_status notif_render_event(const char *type, const uint8_t *payload, size_t len,
                              const char *occurred_at, notif_rendered *out);
void notif_rendered_free(notif_rendered *r);

/* ---- SQL (store.c), on the caller's connection ---- */

/* Record `r` for event `event_id` with its queue row; *inserted 0 when the
 * event had been recorded before (nothing added). */
rpc_status notif_store_record(db_conn *c, const char *event_id, const notif_rendered *r,
                              int *inserted);

/* Column indexes of notif_store_list's rows. */
enum {
	NOTIF_COL_ID,
	NOTIF_COL_USER,
	NOTIF_COL_TEMPLATE,
	NOTIF_COL_SUBJECT,
	NOTIF_COL_BODY,
	NOTIF_COL_CREATED_US
};
rpc_status notif_store_count(db_conn *c, const char *user_id, long long *total);
rpc_status notif_store_list(db_conn *c, const char *user_id, int limit, long long offset,
                            PGresult **rows);

/* Claim up to `limit` due deliveries: count the attempt and lease them for
 * lease_ms. Rows: notification_id, attempts (this one's number), user_id,
 * subject, body. */
enum {
	NOTIF_CLAIM_ID,
	NOTIF_CLAIM_ATTEMPTS,
	NOTIF_CLAIM_USER,
	NOTIF_CLAIM_SUBJECT,
	NOTIF_CLAIM_BODY
};
rpc_status notif_store_claim(db_conn *c, int limit, uint64_t lease_ms, PGresult **rows);

/* Outcomes of the attempt numbered `attempts` (a row claimed since by
 * another worker is left alone). */
rpc_status notif_store_sent(db_conn *c, const char *id, int attempts);
rpc_status notif_store_retry(db_conn *c, const char *id, int attempts, uint64_t delay_ms,
                             const char *error);
rpc_status notif_store_give_up(db_conn *c, const char *id, int attempts, const char *error);
/* Not to be sent at all (the user's account is deactivated): SKIPPED,
 * final, `why` kept in last_error. */
rpc_status notif_store_skip(db_conn *c, const char *id, int attempts, const char *why);
/* Undo a claim that was not attempted (a stop): due now, attempt uncounted. */
rpc_status notif_store_put_back(db_conn *c, const char *id, int attempts);

rpc_status notif_store_counts(db_conn *c, notifications_counts *out);

/* ---- delivery (delivery.c) ---- */

rpc_status notif_deliver_batch(notifications_service *svc, unsigned *handled);

/* ---- sinks (sink.c, smtp.c) ---- */

rpc_status notif_smtp_sink_open(notifications_sink **out, const char *url, const char *from,
                                uint32_t timeout_ms);

/* Split a From setting, "Name <addr>" or "addr", into its parts:
 * name[0..name_cap) ("" when none) and addr[0..addr_cap). -1 when it is
 * not one (control characters, quotes, a bad address). */
int notif_parse_from(const char *from, char *name, size_t name_cap, char *addr, size_t addr_cap);

#endif /* PANTHERA_NOTIF_INTERNAL_H */
