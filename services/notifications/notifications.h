/*
 * notifications.h - the notifications service: the emails sent to users
 * about their orders (panthera.notifications.v1.NotificationService), on
 * schema "notifications" (services/notifications/migrations).
 *
 * Recording. The consumer "notifications.on_order_event" reads the orders
 * outbox (schema "orders") and, for each OrderCreated, OrderPaid,
 * OrderPaymentFailed, OrderCancelled, OrderShipped, OrderDelivered and
 * OrderRefunded, renders one EMAIL notification (template "order_placed",
 * "order_paid", "order_payment_failed", "order_cancelled", "order_shipped",
 * "order_delivered", "order_refunded": a subject and a plain-text body) and
 * records it for the order's user, with a row of the delivery queue, in the
 * consumer's transaction: once per event however often the event arrives.
 * Other event types are ignored. Nothing on that path talks to the network,
 * so a mail server that is down never holds the saga's notifications back.
 *
 * Delivery. The queue is worked apart from recording: a due row is claimed
 * (a lease, so replicas never send one twice at once and a crash only
 * delays it), the recipient's address asked of UserService.BatchGetUsers,
 * and the email handed to the sink. A user whose account is DEACTIVATED
 * then gets nothing: the row is SKIPPED (final, not an error); the
 * notification stays recorded, as every notification is, since recording
 * never asks UserService. A transient failure is retried after
 * retry_base_ms, doubling (at most an hour), up to max_attempts; then, or at
 * once on a permanent refusal (an SMTP 5xx, an unknown user), the row is
 * given up (FAILED, with its last error, counted by
 * notifications_delivery_counts).
 *
 * Sinks. The log sink writes each email as a JSON line (log_write, event
 * "notifications.email"); the SMTP sink (smtp_url "smtp://host[:port]")
 * speaks SMTP to a relay: EHLO (HELO when refused), MAIL FROM, RCPT TO,
 * DATA with CRLF lines and dot-stuffing, QUIT; no TLS, no AUTH. Addresses
 * and subjects with CR, LF or other control characters are refused, so
 * headers cannot be injected.
 *
 * SendEmail sends through the sink at once and records nothing: no
 * notification, no queue row, no log line with the body.
 *
 * ListUserNotifications: the user named by "x-caller-id" request metadata,
 * or an ADMIN ("x-caller-roles"); anyone else gets NOT_FOUND, a call without
 * a caller UNAUTHENTICATED.
 *
 * Thread-safety: once initialised, the service object is shared by the RPC
 * worker threads and the background threads; its configuration fields must
 * not change after notifications_service_init.
 */
#ifndef PANTHERA_NOTIFICATIONS_H
#define PANTHERA_NOTIFICATIONS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "panthera/admin.h"
#include "panthera/db.h"
#include "panthera/events.h"
#include "panthera/notifications/v1/notifications.panthera.h"

#define NOTIFICATIONS_SCHEMA       "notifications"
#define NOTIFICATIONS_CONSUMER     "notifications.on_order_event"
#define NOTIFICATIONS_DEFAULT_FROM "Panthera <no-reply@panthera.local>"

/* ---- sinks ---- */

/* One email to hand over. */
typedef struct notifications_mail {
	const char *to;      /* one address, local@domain, printable ASCII */
	const char *subject; /* one line of UTF-8 without control characters */
	const char *body;    /* UTF-8 text, lines ending in "\n" (or "\r\n") */
	int secret;          /* 1: the body holds a secret; no sink may log it */
	/* The whole exchange must end by then: CLOCK_MONOTONIC milliseconds
	 * (notifications_now_ms), 0 for none but the sink's own timeouts. */
	uint64_t deadline_ms;
	/* Checked while waiting on the network; when it becomes non-zero the
	 * send stops with CANCELLED. NULL: never. */
	const atomic_int *cancel;
} notifications_mail;

typedef struct notifications_sink notifications_sink;

/*
 * A way to deliver email: a small vtable that implementations embed as
 * their first member. send() returns OK when the mail was accepted; on
 * error it writes a sentence for people (never the body) into
 * err[0..errlen) and returns UNAVAILABLE or DEADLINE_EXCEEDED for a
 * transient failure (worth a retry), FAILED_PRECONDITION for a refusal
 * for good (an SMTP 5xx), INVALID_ARGUMENT for a mail it may not send
 * (an unsafe header), CANCELLED when mail->cancel was raised. send() must
 * be thread-safe: RPC handlers and the delivery thread call it at once.
 * destroy() frees the sink (NULL: nothing to free).
 */
struct notifications_sink {
	rpc_status (*send)(notifications_sink *sink, const notifications_mail *mail, char *err,
	                   size_t errlen);
	void (*destroy)(notifications_sink *sink);
};

/*
 * The sink of `smtp_url`: NULL for the log sink, "smtp://host[:port]"
 * (port 25 by default; host a name, an IPv4 address or [IPv6]) for the
 * SMTP sink. `from` is the From header, "Name <address>" or "address"
 * (NULL: NOTIFICATIONS_DEFAULT_FROM); `timeout_ms` bounds the connect and
 * each read or write (0: 10000). INVALID_ARGUMENT, with *out NULL, for a
 * URL or a from-address it cannot use; RESOURCE_EXHAUSTED without memory.
 * Free with notifications_sink_destroy().
 */
rpc_status notifications_sink_open(notifications_sink **out, const char *smtp_url, const char *from,
                                   uint32_t timeout_ms);

/* Destroy a sink; NULL is harmless. */
void notifications_sink_destroy(notifications_sink *sink);

/* Send through a sink (sink->send). */
rpc_status notifications_sink_send(notifications_sink *sink, const notifications_mail *mail,
                                   char *err, size_t errlen);

/* CLOCK_MONOTONIC in milliseconds, for notifications_mail.deadline_ms. */
uint64_t notifications_now_ms(void);

/* NULL when `s` may be an email address here (printable ASCII, one '@',
 * 1..64 bytes before it, a dotted domain, at most 254 bytes, none of
 * space <>()[],;:"\), else why not. */
const char *notifications_check_address(const char *s);

/* ---- the service ---- */

struct notifications_private;

typedef struct notifications_service {
	/* The service's database, migrated with services/notifications/
	 * migrations into schema "notifications", search_path "notifications".
	 * Required. */
	db_pool *pool;
	/* The database of the orders outbox (schema "orders"), only read.
	 * NULL: no consumer (nothing is recorded; List and SendEmail work). */
	db_pool *orders_events;
	/* UserService, for the recipients' addresses (BatchGetUsers). NULL:
	 * every delivery fails (and is retried) with "no UserService". */
	rpc_channel *users;
	/* "smtp://host[:port]"; NULL: the log sink. Ignored when `sink` is set. */
	const char *smtp_url;
	/* From header of every email. NULL: NOTIFICATIONS_DEFAULT_FROM. */
	const char *from;
	/* SMTP connect, and each read or write, in ms. 0: 10000. */
	uint32_t smtp_timeout_ms;
	/* Delivery attempts before a notification is given up. 0: 8. */
	unsigned max_attempts;
	/* Wait after the first failed attempt, doubling after each, at most an
	 * hour. 0: 30000. */
	uint32_t retry_base_ms;
	/* A sink of the caller's (tests, other transports), used instead of
	 * smtp_url; the caller keeps it alive and destroys it. NULL: built
	 * from smtp_url. */
	notifications_sink *sink;
	/* Derived state: set by notifications_service_init, freed by
	 * notifications_service_fini. Not for callers. */
	struct notifications_private *priv;
} notifications_service;

/*
 * Prepare `svc` (its configuration set): open the sink, and the consumer
 * of the orders outbox when orders_events is set (its cursor and bookkeeping
 * tables in schema "notifications"). INVALID_ARGUMENT for a missing pool,
 * a bad smtp_url or from; the database's status otherwise. On error nothing
 * is left to free. Not thread-safe; once per service object.
 */
rpc_status notifications_service_init(notifications_service *svc);

/* Stop the background threads if running and free what init made. The RPC
 * server serving `svc` must have been destroyed. NULL and an uninitialised
 * service are harmless. */
void notifications_service_fini(notifications_service *svc);

/* Serve NotificationService on `srv` with `svc` (which must outlive the
 * server). Initialises `svc` first when notifications_service_init was not
 * called. */
rpc_status notifications_service_register(rpc_server *srv, notifications_service *svc);

/*
 * Run one batch of each consumer (today: the orders outbox): render and
 * record the notifications of the events ready. *handled (may be NULL)
 * gets the number of events applied, ignored or parked. OK with nothing
 * done when there is no consumer. Thread-safe.
 */
rpc_status notifications_process_events(notifications_service *svc, unsigned *handled);

/*
 * Work one batch of the delivery queue (at most 16 due notifications):
 * claim, look up the recipients, send, and record each outcome. *handled
 * (may be NULL) gets the number of notifications attempted (sent, retried
 * later or given up). Thread-safe, also across processes.
 */
rpc_status notifications_deliver_due(notifications_service *svc, unsigned *handled);

/*
 * Start two background threads: one consuming events (process; when
 * nothing was handled, ev_wait up to 1 s), one delivering (a batch; when
 * nothing was due, wait up to 1 s or until new notifications are
 * recorded). FAILED_PRECONDITION when already started or not initialised.
 */
rpc_status notifications_start(notifications_service *svc);

/* Stop and join the background threads; returns within about a second
 * (a send in progress is cancelled and its notification put back in the
 * queue). Harmless when not started. */
void notifications_stop(notifications_service *svc);

/* The delivery queue: notifications waiting (or retrying), sent, given up
 * after their last attempt, and skipped (their user's account was
 * deactivated). */
typedef struct notifications_counts {
	long pending, sent, given_up, skipped;
} notifications_counts;

rpc_status notifications_delivery_counts(notifications_service *svc, notifications_counts *out);

/* How long the delivery queue keeps its final rows: SENT (and SKIPPED)
 * ones a few days after sending (a trace for support), FAILED ones two
 * weeks after giving up (for an operator to look into). The notifications themselves are the
 * users' history (ListUserNotifications) and stay. */
#define NOTIFICATIONS_SENT_KEEP_S   (3 * 86400)
#define NOTIFICATIONS_FAILED_KEEP_S (14 * 86400)

/*
 * Delete what is past its retention: the delivery queue's SENT and SKIPPED
 * rows older than NOTIFICATIONS_SENT_KEEP_S and FAILED rows older than
 * NOTIFICATIONS_FAILED_KEEP_S; PENDING rows and every notification stay.
 * In batches (db_purge); *deleted (may be NULL) gets the rows removed. The
 * service binary's sweeper calls it every few minutes; safe from any
 * thread, also while the delivery thread runs.
 */
rpc_status notifications_sweep(notifications_service *svc, long *deleted);

/* An admin_source_fn (arg: the service) reporting the counts above as
 * panthera_notifications_deliveries{state="pending"|"sent"|"given_up"|
 * "skipped"}. */
void notifications_metrics(admin_metrics *m, void *arg);

/* The consumer of the orders outbox (for admin_add_consumer: backlog and
 * dead-letter replay), or NULL when there is none. */
ev_consumer *notifications_order_consumer(notifications_service *svc);

#endif /* PANTHERA_NOTIFICATIONS_H */
