/*
 * render.c - the templates: one notification per order event, a subject
 * line and a plain-text body, from the event's protobuf payload.
 *
 * Everything taken from the payload is checked or cleaned before it is
 * written: ids must be UUIDs, amounts decimals of two places, currencies
 * three capital letters (else the event is refused, and the event log
 * retries and parks it); names, carriers and reasons are cut to a length
 * and lose their control characters, so a body is always plain lines of
 * UTF-8. Subjects hold nothing but fixed text and the order id.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "notif_internal.h"
#include "panthera/money.h"
#include "panthera/events/v1/events.pb-c.h"
#include "panthera/ids.h"

#define NOTIF_MAX_NAME    200 /* bytes of a product name in a body */
#define NOTIF_MAX_FIELD   100 /* carrier, tracking number, sku, reason */
#define NOTIF_MAX_ITEMS   1000
#define NOTIF_MAX_PAYLOAD (1u << 20)

typedef Panthera__Events__V1__OrderLine order_line;

/* The state of one rendering: the outputs and the first problem met. */
typedef struct render {
	notif_buf subject, body;
	const char *bad; /* what was wrong with the payload, or NULL */
} render;

static int is_currency(const char *s)
{
	return s != NULL && strlen(s) == 3 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' &&
	       s[1] <= 'Z' && s[2] >= 'A' && s[2] <= 'Z';
}

static void put_money(render *r, const char *label, const char *amount, const char *currency)
{
	int64_t cents;
	if (money_parse(amount, &cents) != 0) {
		r->bad = "an amount is not a decimal of two places";
		return;
	}
	if (!is_currency(currency)) {
		r->bad = "a currency is not an ISO 4217 code";
		return;
	}
	if (label != NULL)
		notif_buf_printf(&r->body, "%s: ", label);
	notif_buf_printf(&r->body, "%" PRId64 ".%02d %s", cents / 100, (int)(cents % 100),
	                 currency);
	if (label != NULL)
		notif_buf_puts(&r->body, "\n");
}

static void put_items(render *r, order_line **items, size_t n, const char *currency)
{
	if (n > NOTIF_MAX_ITEMS) {
		r->bad = "too many order lines";
		return;
	}
	if (n == 0)
		return;
	notif_buf_puts(&r->body, "Items:\n");
	for (size_t i = 0; i < n && r->bad == NULL; i++) {
		const order_line *it = items[i];
		if (it->quantity < 1 || it->quantity > 1000) {
			r->bad = "a quantity is outside 1..1000";
			return;
		}
		notif_buf_printf(&r->body, "  %" PRId32 " x ", it->quantity);
		notif_buf_put_text(&r->body, it->name, NOTIF_MAX_NAME);
		if (it->sku != NULL && it->sku[0] != '\0') {
			notif_buf_puts(&r->body, " (");
			notif_buf_put_text(&r->body, it->sku, NOTIF_MAX_FIELD);
			notif_buf_puts(&r->body, ")");
		}
		notif_buf_puts(&r->body, ", ");
		put_money(r, NULL, it->unit_price, currency);
		notif_buf_puts(&r->body, " each: ");
		put_money(r, NULL, it->line_total, currency);
		notif_buf_puts(&r->body, "\n");
	}
}

/* "2026-01-15T10:00:00Z" from a Timestamp, else from the event's commit
 * time (cut to seconds), else nothing. */
static void put_time(render *r, const char *label, const Google__Protobuf__Timestamp *t,
                     const char *occurred_at)
{
	char text[32] = "";
	if (t != NULL && t->seconds > 0 && t->seconds < 253402300800LL) {
		time_t s = (time_t)t->seconds;
		struct tm tm;
		if (gmtime_r(&s, &tm) != NULL)
			strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm);
	} else if (occurred_at != NULL && strlen(occurred_at) >= 20 && occurred_at[10] == 'T') {
		snprintf(text, sizeof(text), "%.19sZ", occurred_at);
		for (size_t i = 0; i < 19; i++) {
			if ((text[i] < '0' || text[i] > '9') && i != 4 && i != 7 && i != 10 &&
			    i != 13 && i != 16)
				text[0] = '\0';
		}
	}
	if (text[0] != '\0')
		notif_buf_printf(&r->body, "%s: %s\n", label, text);
}

static void put_field(render *r, const char *label, const char *value)
{
	if (value == NULL || value[0] == '\0')
		return;
	notif_buf_printf(&r->body, "%s: ", label);
	notif_buf_put_text(&r->body, value, NOTIF_MAX_FIELD);
	notif_buf_puts(&r->body, "\n");
}

static void put_payment(render *r, const char *payment_id)
{
	if (payment_id == NULL || payment_id[0] == '\0')
		return;
	if (!id_is_uuid(payment_id)) {
		r->bad = "payment_id is not a UUID";
		return;
	}
	notif_buf_printf(&r->body, "Payment: %s\n", payment_id);
}

/* Why a payment failed, in words, from PaymentFailed.reason. */
static void put_reason(render *r, const char *reason)
{
	static const struct {
		const char *code, *words;
	} known[] = {
	    {"card_declined", "your card was declined"},
	    {"insufficient_funds", "the card has insufficient funds"},
	    {"invalid_payment_method", "the payment method is not valid"},
	};
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		if (reason != NULL && strcmp(reason, known[i].code) == 0) {
			notif_buf_puts(&r->body, known[i].words);
			return;
		}
	}
	notif_buf_puts(&r->body, "the payment provider refused it");
	if (reason != NULL && reason[0] != '\0') {
		notif_buf_puts(&r->body, " (");
		notif_buf_put_text(&r->body, reason, NOTIF_MAX_FIELD);
		notif_buf_puts(&r->body, ")");
	}
}

/* ---- one function per template ---- */

static void render_placed(render *r, const ProtobufCMessage *m, const char *at)
{
	(void)at;
	const Panthera__Events__V1__OrderCreated *e = (const void *)m;
	notif_buf_printf(&r->subject, "Your order %s has been placed", e->order_id);
	notif_buf_printf(&r->body, "Thank you for your order.\n\nOrder: %s\n", e->order_id);
	put_items(r, e->items, e->n_items, e->currency);
	put_money(r, "Total", e->total_amount, e->currency);
	notif_buf_puts(&r->body,
	               "\nWe will let you know as soon as the payment has gone through.\n");
}

static void render_paid(render *r, const ProtobufCMessage *m, const char *at)
{
	(void)at;
	const Panthera__Events__V1__OrderPaid *e = (const void *)m;
	notif_buf_printf(&r->subject, "Your order %s is paid", e->order_id);
	notif_buf_printf(&r->body,
	                 "We received your payment; your order is being prepared for "
	                 "shipping.\n\nOrder: %s\n",
	                 e->order_id);
	put_payment(r, e->payment_id);
	put_items(r, e->items, e->n_items, e->currency);
	put_money(r, "Amount paid", e->total_amount, e->currency);
}

static void render_payment_failed(render *r, const ProtobufCMessage *m, const char *at)
{
	(void)at;
	const Panthera__Events__V1__OrderPaymentFailed *e = (const void *)m;
	notif_buf_printf(&r->subject, "Payment failed for your order %s", e->order_id);
	notif_buf_puts(&r->body, "The payment for your order did not go through: ");
	put_reason(r, e->reason);
	notif_buf_printf(&r->body, ".\n\nOrder: %s\n", e->order_id);
	put_payment(r, e->payment_id);
	notif_buf_puts(&r->body, "\nThe items are no longer reserved for you. You can pay again "
	                         "with another payment method, or cancel the order.\n");
}

static void render_cancelled(render *r, const ProtobufCMessage *m, const char *at)
{
	(void)at;
	const Panthera__Events__V1__OrderCancelled *e = (const void *)m;
	notif_buf_printf(&r->subject, "Your order %s was cancelled", e->order_id);
	notif_buf_printf(&r->body,
	                 "Your order has been cancelled and its items released.\n\nOrder: %s\n"
	                 "\nIf a payment was taken for it, it will be refunded.\n",
	                 e->order_id);
}

static void render_shipped(render *r, const ProtobufCMessage *m, const char *at)
{
	const Panthera__Events__V1__OrderShipped *e = (const void *)m;
	notif_buf_printf(&r->subject, "Your order %s has shipped", e->order_id);
	notif_buf_printf(&r->body, "Your order is on its way.\n\nOrder: %s\n", e->order_id);
	put_field(r, "Carrier", e->carrier);
	put_field(r, "Tracking number", e->tracking_number);
	put_time(r, "Shipped", e->shipped_at, at);
}

static void render_delivered(render *r, const ProtobufCMessage *m, const char *at)
{
	const Panthera__Events__V1__OrderDelivered *e = (const void *)m;
	notif_buf_printf(&r->subject, "Your order %s was delivered", e->order_id);
	notif_buf_printf(&r->body,
	                 "Your order has been delivered. We hope you enjoy it.\n\n"
	                 "Order: %s\n",
	                 e->order_id);
	put_time(r, "Delivered", e->delivered_at, at);
}

static void render_refunded(render *r, const ProtobufCMessage *m, const char *at)
{
	(void)at;
	const Panthera__Events__V1__OrderRefunded *e = (const void *)m;
	notif_buf_printf(&r->subject, "Your order %s was refunded", e->order_id);
	notif_buf_printf(&r->body, "Your order has been refunded in full.\n\nOrder: %s\n",
	                 e->order_id);
	put_payment(r, e->payment_id);
	put_items(r, e->items, e->n_items, e->currency);
	put_money(r, "Amount refunded", e->amount, e->currency);
	notif_buf_puts(&r->body, "\nThe money goes back to the payment method you paid with.\n");
}

static const struct template_def {
	const char *type; /* full name of the payload */
	const char *template;
	const ProtobufCMessageDescriptor *desc;
	void (*render)(render *r, const ProtobufCMessage *m, const char *occurred_at);
} templates[] = {
    {"panthera.events.v1.OrderCreated", "order_placed",
     &panthera__events__v1__order_created__descriptor, render_placed},
    {"panthera.events.v1.OrderPaid", "order_paid", &panthera__events__v1__order_paid__descriptor,
     render_paid},
    {"panthera.events.v1.OrderPaymentFailed", "order_payment_failed",
     &panthera__events__v1__order_payment_failed__descriptor, render_payment_failed},
    {"panthera.events.v1.OrderCancelled", "order_cancelled",
     &panthera__events__v1__order_cancelled__descriptor, render_cancelled},
    {"panthera.events.v1.OrderShipped", "order_shipped",
     &panthera__events__v1__order_shipped__descriptor, render_shipped},
    {"panthera.events.v1.OrderDelivered", "order_delivered",
     &panthera__events__v1__order_delivered__descriptor, render_delivered},
    {"panthera.events.v1.OrderRefunded", "order_refunded",
     &panthera__events__v1__order_refunded__descriptor, render_refunded},
};

/* A string field of a decoded message, by name ("" when absent). */
static const char *string_field(const ProtobufCMessage *m, const char *name)
{
	const ProtobufCFieldDescriptor *f =
	    protobuf_c_message_descriptor_get_field_by_name(m->descriptor, name);
	if (f == NULL || f->type != PROTOBUF_C_TYPE_STRING || f->label == PROTOBUF_C_LABEL_REPEATED)
		return "";
	const char *const *v = (const char *const *)(const void *)((const char *)m + f->offset);
	return *v != NULL ? *v : "";
}

rpc_status notif_render_event(const char *type, const uint8_t *payload, size_t len,
                              const char *occurred_at, notif_rendered *out)
{
	memset(out, 0, sizeof(*out));
	const struct template_def *t = NULL;
	for (size_t i = 0; i < sizeof(templates) / sizeof(templates[0]); i++) {
		if (type != NULL && strcmp(type, templates[i].type) == 0)
			t = &templates[i];
	}
	if (t == NULL)
		return RPC_STATUS_NOT_FOUND;
	if (len > NOTIF_MAX_PAYLOAD || (payload == NULL && len > 0)) {
		out->bad = "the payload is too large";
		return RPC_STATUS_INVALID_ARGUMENT;
	}
	ProtobufCMessage *m = protobuf_c_message_unpack(t->desc, NULL, len, payload);
	if (m == NULL) {
		out->bad = "the payload does not decode"; /* or no memory: retried anyway */
		return RPC_STATUS_INVALID_ARGUMENT;
	}
	/* every order event names its order and its user */
	const char *order_id = string_field(m, "order_id");
	const char *user_id = string_field(m, "user_id");
	render r = {0};
	if (id_is_uuid(order_id) && id_is_uuid(user_id))
		t->render(&r, m, occurred_at);
	else
		r.bad = "order_id or user_id is not a UUID";
	rpc_status st = RPC_STATUS_OK;
	if (r.bad != NULL) {
		out->bad = r.bad;
		st = RPC_STATUS_INVALID_ARGUMENT;
	} else {
		out->template = t->template;
		snprintf(out->order_id, sizeof(out->order_id), "%s", order_id);
		snprintf(out->user_id, sizeof(out->user_id), "%s", user_id);
		out->subject = notif_buf_take(&r.subject);
		out->body = notif_buf_take(&r.body);
		if (out->subject == NULL || out->body == NULL) {
			notif_rendered_free(out);
			st = RPC_STATUS_RESOURCE_EXHAUSTED;
		}
	}
	notif_buf_free(&r.subject);
	notif_buf_free(&r.body);
	protobuf_c_message_free_unpacked(m, NULL);
	return st;
}

void notif_rendered_free(notif_rendered *r)
{
	if (r == NULL)
		return;
	free(r->subject);
	free(r->body);
	r->subject = r->body = NULL;
}
