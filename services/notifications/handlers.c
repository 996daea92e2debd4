/*
 * handlers.c - NotificationService over RPC: ListUserNotifications (the
 * owner or an admin, as API.md's owner policy) and SendEmail (through the
 * sink, recorded nowhere).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "notif_internal.h"
#include "panthera/caller.h"
#include "panthera/ids.h"
#include "panthera/log.h"
#include "panthera/text.h"

#define NOTIF_MAX_PAGE_SIZE     100
#define NOTIF_DEFAULT_PAGE_SIZE 20
#define NOTIF_SUBJECT_CHARS     250
#define NOTIF_SUBJECT_BYTES     900
#define NOTIF_BODY_BYTES        (64u * 1024)

/* How long a handler may wait for a database connection: what the caller
 * has left, at most 10 s. */
static uint32_t db_wait_ms(const rpc_call *call)
{
	uint32_t left = rpc_call_remaining_ms(call);
	return left < 10000 ? left : 10000;
}

static rpc_status bad_field(rpc_call *call, const char *field, const char *why)
{
	rpc_call_add_field_violation(call, field, why);
	return rpc_call_error(call, RPC_STATUS_INVALID_ARGUMENT, "%s %s", field, why);
}

static rpc_status db_failed(rpc_call *call, rpc_status st)
{
	/* the database's own message went to the log */
	return rpc_call_error(call, st, "notifications storage: %s", rpc_status_name(st));
}

static char *arena_strdup(rpc_call *call, const char *s)
{
	size_t n = strlen(s);
	char *d = rpc_call_alloc(call, n + 1);
	if (d != NULL)
		memcpy(d, s, n + 1);
	return d;
}

/* ---- ListUserNotifications ---- */

typedef struct list_op {
	rpc_call *call;
	const char *user_id;
	int limit;
	long long offset;
	long long total;
	Panthera__Notifications__V1__ListUserNotificationsResponse *resp;
} list_op;

static rpc_status fill_notification(rpc_call *call, Panthera__Notifications__V1__Notification *n,
                                    const PGresult *r, int row)
{
	panthera__notifications__v1__notification__init(n);
	n->id = arena_strdup(call, PQgetvalue(r, row, NOTIF_COL_ID));
	n->user_id = arena_strdup(call, PQgetvalue(r, row, NOTIF_COL_USER));
	n->template_ = arena_strdup(call, PQgetvalue(r, row, NOTIF_COL_TEMPLATE));
	n->subject = arena_strdup(call, PQgetvalue(r, row, NOTIF_COL_SUBJECT));
	n->body = arena_strdup(call, PQgetvalue(r, row, NOTIF_COL_BODY));
	n->created_at = rpc_call_alloc(call, sizeof(*n->created_at));
	if (n->id == NULL || n->user_id == NULL || n->template_ == NULL || n->subject == NULL ||
	    n->body == NULL || n->created_at == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	n->channel = PANTHERA__NOTIFICATIONS__V1__NOTIFICATION_CHANNEL__EMAIL;
	long long us = atoll(PQgetvalue(r, row, NOTIF_COL_CREATED_US));
	google__protobuf__timestamp__init(n->created_at);
	long long s = us / 1000000, frac = us % 1000000;
	if (frac < 0) {
		frac += 1000000;
		s--;
	}
	n->created_at->seconds = s;
	n->created_at->nanos = (int32_t)(frac * 1000);
	return RPC_STATUS_OK;
}

static rpc_status tx_list(db_conn *c, void *arg)
{
	list_op *op = arg;
	op->resp->n_notifications = 0;
	rpc_status st = notif_store_count(c, op->user_id, &op->total);
	if (st != RPC_STATUS_OK)
		return st;
	PGresult *r;
	if ((st = notif_store_list(c, op->user_id, op->limit, op->offset, &r)) != RPC_STATUS_OK)
		return st;
	size_t n = (size_t)PQntuples(r);
	op->resp->notifications = rpc_call_alloc(op->call, (n + 1) * sizeof(void *));
	if (op->resp->notifications == NULL)
		st = RPC_STATUS_RESOURCE_EXHAUSTED;
	for (size_t i = 0; i < n && st == RPC_STATUS_OK; i++) {
		Panthera__Notifications__V1__Notification *out =
		    rpc_call_alloc(op->call, sizeof(*out));
		if (out == NULL)
			st = RPC_STATUS_RESOURCE_EXHAUSTED;
		else if ((st = fill_notification(op->call, out, r, (int)i)) == RPC_STATUS_OK)
			op->resp->notifications[op->resp->n_notifications++] = out;
	}
	PQclear(r);
	return st;
}

static rpc_status list_user_notifications(
    rpc_call *call, const Panthera__Notifications__V1__ListUserNotificationsRequest *req,
    Panthera__Notifications__V1__ListUserNotificationsResponse *resp, void *user)
{
	notifications_service *svc = user;
	if (!id_is_uuid(req->user_id))
		return bad_field(call, "user_id", "must be a UUID");
	caller who;
	caller_get(call, &who);
	if (who.id == NULL)
		return rpc_call_error(call, RPC_STATUS_UNAUTHENTICATED, "no caller identity");
	if (!caller_may_see(&who, req->user_id)) {
		/* as if the user did not exist: API.md answers 404, not 403 */
		rpc_call_set_error_reason(call, "USER_NOT_FOUND", NULL);
		return rpc_call_error(call, RPC_STATUS_NOT_FOUND, "user %s not found",
		                      req->user_id);
	}
	if (req->page < 0)
		return bad_field(call, "page", "must be 1 or more");
	if (req->page_size < 0 || req->page_size > NOTIF_MAX_PAGE_SIZE)
		return bad_field(call, "page_size", "must be between 1 and 100");
	int page = req->page ? req->page : 1;
	int size = req->page_size ? req->page_size : NOTIF_DEFAULT_PAGE_SIZE;
	list_op op = {.call = call,
	              .user_id = req->user_id,
	              .limit = size,
	              .offset = (long long)(page - 1) * size,
	              .resp = resp};
	rpc_status st = db_transaction(svc->pool, 0, db_wait_ms(call), tx_list, &op);
	if (st == RPC_STATUS_RESOURCE_EXHAUSTED)
		return rpc_call_error(call, st, "no memory for the reply");
	if (st != RPC_STATUS_OK)
		return db_failed(call, st);
	resp->total = op.total > INT32_MAX ? INT32_MAX : (int32_t)op.total;
	resp->page = page;
	resp->page_size = size;
	return RPC_STATUS_OK;
}

/* ---- SendEmail ---- */

static rpc_status send_email(rpc_call *call,
                             const Panthera__Notifications__V1__SendEmailRequest *req,
                             Panthera__Notifications__V1__SendEmailResponse *resp, void *user)
{
	(void)resp;
	notifications_service *svc = user;
	const char *first = NULL;
	const char *why = notifications_check_address(req->to);
	if (why != NULL) {
		rpc_call_add_field_violation(call, "to", why);
		first = "to";
	}
	long chars = text_chars(req->subject, NOTIF_SUBJECT_BYTES, 0);
	if (chars < 1 || chars > NOTIF_SUBJECT_CHARS) {
		rpc_call_add_field_violation(call, "subject",
		                             "must be 1 to 250 characters on one line, without "
		                             "control characters (no CR or LF)");
		first = first ? first : "subject";
	}
	if (req->body == NULL || req->body[0] == '\0' ||
	    text_chars(req->body, NOTIF_BODY_BYTES, TEXT_MULTILINE) < 0) {
		rpc_call_add_field_violation(call, "body",
		                             "must be UTF-8 text of 1 byte to 64 KiB, without "
		                             "control characters but line breaks and tabs");
		first = first ? first : "body";
	}
	if (first != NULL)
		return rpc_call_error(call, RPC_STATUS_INVALID_ARGUMENT, "invalid email: check %s",
		                      first);
	uint32_t left = rpc_call_remaining_ms(call);
	if (left == 0)
		return rpc_call_error(call, RPC_STATUS_DEADLINE_EXCEEDED, "no time left to send");
	/* keep a little of the caller's time for the reply */
	notifications_mail m = {.to = req->to,
	                        .subject = req->subject,
	                        .body = req->body,
	                        .secret = 1,
	                        .deadline_ms = left == UINT32_MAX
	                                           ? 0
	                                           : notifications_now_ms() +
	                                                 (left > 400 ? left - 200 : left / 2 + 1)};
	char err[512];
	rpc_status st = notifications_sink_send(svc->priv->sink, &m, err, sizeof(err));
	const char *rid = rpc_call_metadata(call, "x-request-id");
	if (st != RPC_STATUS_OK) {
		log_write(LOG_WARN, rid, "notifications.send_email",
		          "email to %s not sent (%s): %s", req->to, rpc_status_name(st), err);
		rpc_call_set_error_reason(call, "EMAIL_NOT_SENT", NULL);
		return rpc_call_error(call, RPC_STATUS_UNAVAILABLE, "email not sent: %s", err);
	}
	log_write(LOG_INFO, rid, "notifications.send_email", "email to %s sent (not recorded)",
	          req->to);
	return RPC_STATUS_OK;
}

static const panthera_notifications_v1_notification_service_handlers handlers = {
    .list_user_notifications = list_user_notifications,
    .send_email = send_email,
};

rpc_status notifications_service_register(rpc_server *srv, notifications_service *svc)
{
	if (srv == NULL || svc == NULL)
		return RPC_STATUS_INVALID_ARGUMENT;
	if (svc->priv == NULL) {
		rpc_status st = notifications_service_init(svc);
		if (st != RPC_STATUS_OK)
			return st;
	}
	return panthera_notifications_v1_notification_service_register(srv, &handlers, svc);
}
