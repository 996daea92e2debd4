/*
 * handlers.c - PaymentService over RPC: validate the request (each refusal
 * a field violation), run the charge or refund (charge.c) in one
 * transaction, map the outcome to a reply. CreatePayment first asks
 * OrderService.ResumePayment for the order to pay; GetPayment shows a
 * payment to its payer or an admin only (NOT_FOUND to anyone else, as for a
 * payment that does not exist).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "panthera/fieldcheck.h"
#include "panthera/caller.h"
#include "panthera/events.h"
#include "panthera/log.h"
#include "panthera/orders/v1/orders.panthera.h"
#include "panthera/text.h"
#include "payments_internal.h"

#define PAY_ORDERS_TIMEOUT 5000u /* ms: the most ResumePayment may take */
#define PAY_MESSAGE_MAX    512

/* A string field of a request: protobuf-c gives "" for an absent one, but
 * a hand-built request may hold NULL. */
static const char *str(const char *s)
{
	return s != NULL ? s : "";
}

/* How long a handler may wait for a database connection: what the caller
 * has left, at most 10 s. */
static uint32_t db_wait_ms(const rpc_call *call)
{
	uint32_t left = rpc_call_remaining_ms(call);
	return left < 10000 ? left : 10000;
}

/* How long the provider may take: what the caller has left, at most
 * PAY_PROVIDER_WAIT, never 0 (which would mean the default). */
static uint32_t provider_wait_ms(const rpc_call *call)
{
	uint32_t left = rpc_call_remaining_ms(call);
	if (left == 0)
		return 1;
	return left < PAY_PROVIDER_WAIT ? left : PAY_PROVIDER_WAIT;
}

static rpc_status db_failed(rpc_call *call, rpc_status st)
{
	/* The database's own message went to the log; the caller gets a
	 * status and a plain sentence. */
	return rpc_call_error(call, st, "payments storage: %s", rpc_status_name(st));
}

static rpc_status payment_not_found(rpc_call *call, const char *id)
{
	rpc_call_set_error_reason(call, "PAYMENT_NOT_FOUND", NULL);
	return rpc_call_error(call, RPC_STATUS_NOT_FOUND, "payment %s not found", id);
}

/* The status of a failed charge or refund, for the caller. */
static rpc_status money_failed(rpc_call *call, rpc_status st, pay_fault fault)
{
	switch (fault) {
	case PAY_FAULT_PROVIDER_DOWN:
		rpc_call_set_error_reason(call, "PAYMENT_PROVIDER_UNAVAILABLE", NULL);
		return rpc_call_error(call, RPC_STATUS_UNAVAILABLE,
		                      "the payment provider did not answer; nothing was charged,"
		                      " try again later");
	case PAY_FAULT_PROVIDER_ERROR:
		log_write(LOG_ERROR, rpc_call_metadata(call, "x-request-id"), "payments.provider",
		          "the payment provider failed");
		return rpc_call_error(call, RPC_STATUS_INTERNAL, "the payment provider failed");
	default:
		return db_failed(call, st);
	}
}

/* ---- validation ---- */

static void check_uuid(field_checker *k, const char *field, const char *s)
{
	if (!id_is_uuid(s))
		field_refuse(k, field, "must be a UUID");
}

static void check_amount(field_checker *k, const char *field, const char *s, int64_t *cents)
{
	if (money_parse(s, cents) != 0)
		field_refuse(
		    k, field,
		    "must be a decimal number of at most 10 digits and 2 decimals, e.g. \"12.50\"");
	else if (*cents <= 0)
		field_refuse(k, field, "must be more than 0.00");
}

static void check_currency(field_checker *k, const char *s)
{
	if (!money_currency_valid(s))
		field_refuse(k, "currency",
		             "must be an ISO 4217 code: 3 upper-case letters, e.g. \"USD\"");
}

static void check_text(field_checker *k, const char *field, const char *s)
{
	if (!text_valid(s, 1, PAY_KEY_MAX, 0))
		field_refuse(k, field, "must be 1 to 255 characters without control characters");
}

/* ---- the caller (panthera/caller.h) ---- */

static rpc_status no_caller(rpc_call *call)
{
	return rpc_call_error(call, RPC_STATUS_UNAUTHENTICATED, "no caller identity");
}

/* ---- the reply ---- */

static char *arena_strdup(rpc_call *call, const char *s)
{
	size_t n = strlen(s);
	char *d = rpc_call_alloc(call, n + 1);
	if (d != NULL)
		memcpy(d, s, n + 1);
	return d;
}

static Google__Protobuf__Timestamp *arena_time(rpc_call *call, int64_t us)
{
	Google__Protobuf__Timestamp *t = rpc_call_alloc(call, sizeof(*t));
	if (t == NULL)
		return NULL;
	google__protobuf__timestamp__init(t);
	int64_t s = us / 1000000, frac = us % 1000000;
	if (frac < 0) {
		s--;
		frac += 1000000;
	}
	t->seconds = s;
	t->nanos = (int32_t)(frac * 1000);
	return t;
}

static Panthera__Payments__V1__PaymentStatus status_value(const char *s)
{
	static const struct {
		const char *name;
		Panthera__Payments__V1__PaymentStatus value;
	} names[] = {
	    {"PENDING", PANTHERA__PAYMENTS__V1__PAYMENT_STATUS__PENDING},
	    {"SUCCEEDED", PANTHERA__PAYMENTS__V1__PAYMENT_STATUS__SUCCEEDED},
	    {"FAILED", PANTHERA__PAYMENTS__V1__PAYMENT_STATUS__FAILED},
	    {"REFUNDED", PANTHERA__PAYMENTS__V1__PAYMENT_STATUS__REFUNDED},
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(names[i].name, s) == 0)
			return names[i].value;
	}
	return PANTHERA__PAYMENTS__V1__PAYMENT_STATUS__PAYMENT_STATUS_UNSPECIFIED;
}

static rpc_status fill_payment(rpc_call *call, Panthera__Payments__V1__Payment *out,
                               const pay_record *rec)
{
	out->id = arena_strdup(call, rec->id);
	out->order_id = arena_strdup(call, rec->order_id);
	out->user_id = arena_strdup(call, rec->user_id);
	out->amount = arena_strdup(call, rec->amount);
	out->currency = arena_strdup(call, rec->currency);
	out->failure_reason = arena_strdup(call, rec->failure_reason);
	out->refunded_amount = arena_strdup(call, rec->refunded_amount);
	out->created_at = arena_time(call, rec->created_us);
	out->updated_at = arena_time(call, rec->updated_us);
	if (out->id == NULL || out->order_id == NULL || out->user_id == NULL ||
	    out->amount == NULL || out->currency == NULL || out->failure_reason == NULL ||
	    out->refunded_amount == NULL || out->created_at == NULL || out->updated_at == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	out->status = status_value(rec->status);
	return RPC_STATUS_OK;
}

/* ---- Charge ---- */

typedef struct charge_op {
	const payments_provider *provider;
	pay_charge_req req;
	pay_record rec;
	int created;
	pay_fault fault;
} charge_op;

static rpc_status tx_charge(db_conn *c, void *arg)
{
	charge_op *op = arg;
	return pay_charge(c, op->provider, &op->req, &op->rec, &op->created, &op->fault);
}

static rpc_status charge(rpc_call *call, const Panthera__Payments__V1__ChargeRequest *req,
                         Panthera__Payments__V1__Payment *resp, void *user)
{
	payments_service *svc = user;
	field_checker k = {.call = call};
	int64_t cents = 0;
	check_uuid(&k, "order_id", str(req->order_id));
	check_uuid(&k, "user_id", str(req->user_id));
	check_amount(&k, "amount", str(req->amount), &cents);
	check_currency(&k, str(req->currency));
	check_text(&k, "payment_method_id", str(req->payment_method_id));
	check_text(&k, "idempotency_key", str(req->idempotency_key));
	rpc_status st = field_checked(&k);
	if (st != RPC_STATUS_OK)
		return st;
	charge_op op = {.provider = pay_provider_of(svc),
	                .req = {.order_id = req->order_id,
	                        .user_id = req->user_id,
	                        .amount_cents = cents,
	                        .currency = req->currency,
	                        .payment_method_id = req->payment_method_id,
	                        .idempotency_key = req->idempotency_key,
	                        .timeout_ms = provider_wait_ms(call)}};
	st = db_transaction(svc->pool, DB_TX_RETRY, db_wait_ms(call), tx_charge, &op);
	if (st != RPC_STATUS_OK)
		return money_failed(call, st, op.fault);
	return fill_payment(call, resp, &op.rec);
}

/* ---- Refund ---- */

typedef struct refund_op {
	const payments_provider *provider;
	const char *payment_id;
	uint32_t timeout_ms;
	pay_record rec;
	pay_fault fault;
} refund_op;

static rpc_status tx_refund(db_conn *c, void *arg)
{
	refund_op *op = arg;
	return pay_refund(c, op->provider, op->payment_id, op->timeout_ms, &op->rec, &op->fault);
}

static rpc_status refund(rpc_call *call, const Panthera__Payments__V1__RefundRequest *req,
                         Panthera__Payments__V1__Payment *resp, void *user)
{
	payments_service *svc = user;
	field_checker k = {.call = call};
	check_uuid(&k, "payment_id", str(req->payment_id));
	rpc_status st = field_checked(&k);
	if (st != RPC_STATUS_OK)
		return st;
	refund_op op = {.provider = pay_provider_of(svc),
	                .payment_id = req->payment_id,
	                .timeout_ms = provider_wait_ms(call)};
	st = db_transaction(svc->pool, DB_TX_RETRY, db_wait_ms(call), tx_refund, &op);
	if (st == RPC_STATUS_OK)
		return fill_payment(call, resp, &op.rec);
	if (st == RPC_STATUS_NOT_FOUND)
		return payment_not_found(call, req->payment_id);
	if (op.fault == PAY_FAULT_NOT_SUCCEEDED) {
		rpc_call_set_error_reason(call, "PAYMENT_NOT_SUCCEEDED", NULL);
		return rpc_call_error(call, RPC_STATUS_FAILED_PRECONDITION,
		                      "payment %s is %s: only a SUCCEEDED payment can be refunded",
		                      req->payment_id, op.rec.status);
	}
	if (op.fault == PAY_FAULT_PROVIDER_REFUSED) {
		log_write(LOG_WARN, rpc_call_metadata(call, "x-request-id"), "payments.refund",
		          "the provider refused the refund of payment %s", req->payment_id);
		rpc_call_set_error_reason(call, "REFUND_REFUSED", NULL);
		return rpc_call_error(call, RPC_STATUS_FAILED_PRECONDITION,
		                      "the payment provider refused to refund payment %s",
		                      req->payment_id);
	}
	return money_failed(call, st, op.fault);
}

/* ---- GetPayment ---- */

typedef struct get_op {
	const char *id;
	pay_record rec;
} get_op;

static rpc_status tx_get(db_conn *c, void *arg)
{
	get_op *op = arg;
	return pay_store_get(c, op->id, 0, &op->rec);
}

static rpc_status get_payment(rpc_call *call, const Panthera__Payments__V1__GetPaymentRequest *req,
                              Panthera__Payments__V1__Payment *resp, void *user)
{
	payments_service *svc = user;
	caller who;
	caller_get(call, &who);
	if (who.id == NULL)
		return no_caller(call);
	field_checker k = {.call = call};
	check_uuid(&k, "payment_id", str(req->payment_id));
	rpc_status st = field_checked(&k);
	if (st != RPC_STATUS_OK)
		return st;
	get_op op = {.id = req->payment_id};
	st = db_transaction(svc->pool, 0, db_wait_ms(call), tx_get, &op);
	if (st == RPC_STATUS_NOT_FOUND)
		return payment_not_found(call, req->payment_id);
	if (st != RPC_STATUS_OK)
		return db_failed(call, st);
	if (!caller_may_see(&who, op.rec.user_id))
		return payment_not_found(call, req->payment_id); /* not yours: as if absent */
	return fill_payment(call, resp, &op.rec);
}

/* ---- CreatePayment ---- */

typedef struct create_op {
	payments_service *svc;
	rpc_call *call;
	const char *user_id, *order_id, *payment_method_id;
	const char *key; /* the Idempotency-Key, or NULL */
	pay_record rec;
	int replayed;
	pay_fault fault;
	/* a refusal of OrderService, passed on */
	int orders_refused;
	char orders_message[PAY_MESSAGE_MAX];
	char orders_reason[257];
	int bad_order; /* OrderService answered with an order we cannot charge */
} create_op;

/* Options of the call to OrderService: what the caller has left, at most
 * PAY_ORDERS_TIMEOUT, with the caller's request id and the attempt's key
 * (`md` holds two entries). 0 when the deadline has passed. */
static int orders_opts(rpc_call *call, const char *attempt, rpc_call_opts *o,
                       rpc_metadata_entry *md)
{
	uint32_t left = rpc_call_remaining_ms(call);
	if (left == 0)
		return 0;
	memset(o, 0, sizeof(*o));
	o->timeout_ms = left < PAY_ORDERS_TIMEOUT ? left : PAY_ORDERS_TIMEOUT;
	size_t n = 0;
	const char *request_id = rpc_call_metadata(call, "x-request-id");
	if (request_id != NULL)
		md[n++] = (rpc_metadata_entry){"x-request-id", request_id};
	md[n++] = (rpc_metadata_entry){"idempotency-key", attempt};
	o->metadata = md;
	o->n_metadata = n;
	return 1;
}

/* OrderService's refusals that mean something to our caller, passed on
 * with their message and reason; anything else is our failure. */
static int passes_through(rpc_status st)
{
	return st == RPC_STATUS_NOT_FOUND || st == RPC_STATUS_FAILED_PRECONDITION ||
	       st == RPC_STATUS_ABORTED || st == RPC_STATUS_UNAVAILABLE ||
	       st == RPC_STATUS_DEADLINE_EXCEEDED || st == RPC_STATUS_RESOURCE_EXHAUSTED;
}

/* Ask OrderService to make the order payable again for `attempt`; its
 * total and currency into *cents and currency[4]. */
static rpc_status resume_order(create_op *op, const char *attempt, int64_t *cents, char currency[4])
{
	rpc_call_opts o;
	rpc_metadata_entry md[2];
	if (!orders_opts(op->call, attempt, &o, md))
		return RPC_STATUS_DEADLINE_EXCEEDED;
	Panthera__Orders__V1__ResumePaymentRequest rreq =
	    PANTHERA__ORDERS__V1__RESUME_PAYMENT_REQUEST__INIT;
	rreq.order_id = (char *)op->order_id;
	rreq.user_id = (char *)op->user_id;
	const Panthera__Orders__V1__Order *order = NULL;
	rpc_reply *reply = NULL;
	rpc_status st = panthera_orders_v1_order_service_resume_payment(op->svc->orders, &rreq, &o,
	                                                                &order, &reply);
	if (st != RPC_STATUS_OK) {
		op->orders_refused = 1;
		snprintf(op->orders_message, sizeof(op->orders_message), "%s",
		         rpc_reply_message(reply));
		snprintf(op->orders_reason, sizeof(op->orders_reason), "%s",
		         rpc_reply_error_reason(reply));
		rpc_reply_free(reply);
		return st;
	}
	if (order == NULL || strcasecmp(str(order->id), op->order_id) != 0 ||
	    money_parse(str(order->total_amount), cents) != 0 || *cents <= 0 ||
	    !money_currency_valid(str(order->currency))) {
		op->bad_order = 1;
		rpc_reply_free(reply);
		return RPC_STATUS_INTERNAL;
	}
	snprintf(currency, 4, "%s", order->currency);
	rpc_reply_free(reply);
	return RPC_STATUS_OK;
}

/*
 * One transaction: replay the Idempotency-Key's payment, or resume the
 * order, charge it and remember the key. The key's advisory lock makes a
 * second request with the same key wait for the first and replay it. Not
 * run again on a serialization failure (the order was resumed already).
 *
 * The attempt: "CreatePayment:<order id>:<payments of the order recorded
 * so far>", under the order's advisory lock, so attempts on one order take
 * turns. It is the charge's key and goes to ResumePayment as its
 * `idempotency-key`. An attempt that recorded nothing (the provider down,
 * the deadline passed) leaves the count, hence the key, as it was: the
 * retry resumes the order it left PENDING_PAYMENT (OrderService accepts the
 * same key again) and charges under the same key, which a provider that
 * did answer meanwhile replays instead of charging twice. Once a payment
 * is recorded the next attempt has a new key, and OrderService refuses it
 * until that payment's event has settled the order.
 */
static rpc_status tx_create(db_conn *c, void *arg)
{
	create_op *op = arg;
	rpc_status st;
	if (op->key != NULL) {
		char payment_id[ID_UUID_LEN + 1];
		if ((st = pay_store_lock(c, op->user_id, op->key)) != RPC_STATUS_OK)
			return st;
		st = pay_store_find_key(c, op->user_id, op->key, payment_id);
		if (st == RPC_STATUS_OK) {
			op->replayed = 1;
			return pay_store_get(c, payment_id, 0, &op->rec);
		}
		if (st != RPC_STATUS_NOT_FOUND)
			return st;
	}
	char order[ID_UUID_LEN + 1];
	for (size_t i = 0; i <= ID_UUID_LEN; i++) /* a UUID (checked): one spelling */
		order[i] = (char)tolower((unsigned char)op->order_id[i]);
	long recorded;
	if ((st = pay_store_lock(c, "order", order)) != RPC_STATUS_OK ||
	    (st = pay_store_count_order(c, order, &recorded)) != RPC_STATUS_OK)
		return st;
	char charge_key[sizeof("CreatePayment::") + ID_UUID_LEN + 20];
	snprintf(charge_key, sizeof(charge_key), "CreatePayment:%s:%ld", order, recorded);
	int64_t cents;
	char currency[4];
	if ((st = resume_order(op, charge_key, &cents, currency)) != RPC_STATUS_OK)
		return st;
	pay_charge_req req = {.order_id = op->order_id,
	                      .user_id = op->user_id,
	                      .amount_cents = cents,
	                      .currency = currency,
	                      .payment_method_id = op->payment_method_id,
	                      .idempotency_key = charge_key,
	                      .timeout_ms = provider_wait_ms(op->call)};
	int created;
	st = pay_charge(c, pay_provider_of(op->svc), &req, &op->rec, &created, &op->fault);
	if (st == RPC_STATUS_OK && op->key != NULL)
		st = pay_store_remember_key(c, op->user_id, op->key, op->rec.id);
	return st;
}

static rpc_status create_payment(rpc_call *call,
                                 const Panthera__Payments__V1__CreatePaymentRequest *req,
                                 Panthera__Payments__V1__Payment *resp, void *user)
{
	payments_service *svc = user;
	caller who;
	caller_get(call, &who);
	if (who.id == NULL)
		return no_caller(call);
	const char *key = rpc_call_metadata(call, "idempotency-key");
	field_checker k = {.call = call};
	check_uuid(&k, "order_id", str(req->order_id));
	check_text(&k, "payment_method_id", str(req->payment_method_id));
	if (key != NULL && !text_valid(key, 1, PAY_KEY_MAX, 0))
		field_refuse(&k, "Idempotency-Key",
		             "must be 1 to 255 characters without control characters");
	rpc_status st = field_checked(&k);
	if (st != RPC_STATUS_OK)
		return st;
	if (svc->orders == NULL)
		return rpc_call_error(call, RPC_STATUS_UNAVAILABLE,
		                      "payments cannot reach OrderService");
	create_op op = {.svc = svc,
	                .call = call,
	                .user_id = who.id,
	                .order_id = req->order_id,
	                .payment_method_id = req->payment_method_id,
	                .key = key};
	st = db_transaction(svc->pool, 0, db_wait_ms(call), tx_create, &op);
	if (st == RPC_STATUS_OK)
		return fill_payment(call, resp, &op.rec);
	if (op.orders_refused) {
		if (!passes_through(st)) {
			log_write(LOG_ERROR, rpc_call_metadata(call, "x-request-id"),
			          "payments.resume", "OrderService.ResumePayment failed: %s: %s",
			          rpc_status_name(st), op.orders_message);
			return rpc_call_error(call, RPC_STATUS_INTERNAL,
			                      "the order could not be prepared for payment");
		}
		if (op.orders_reason[0] != '\0')
			rpc_call_set_error_reason(call, op.orders_reason, NULL);
		if (st == RPC_STATUS_NOT_FOUND || st == RPC_STATUS_FAILED_PRECONDITION)
			return rpc_call_error(call, st, "%s", op.orders_message);
		return rpc_call_error(call, st, "OrderService: %s", op.orders_message);
	}
	if (op.bad_order) {
		log_write(LOG_ERROR, rpc_call_metadata(call, "x-request-id"), "payments.resume",
		          "OrderService.ResumePayment returned an order without a payable total");
		return rpc_call_error(call, RPC_STATUS_INTERNAL,
		                      "the order could not be prepared for payment");
	}
	if (st == RPC_STATUS_DEADLINE_EXCEEDED && rpc_call_remaining_ms(call) == 0)
		return rpc_call_error(call, st, "deadline exceeded");
	return money_failed(call, st, op.fault);
}

static const panthera_payments_v1_payment_service_handlers handlers = {
    .create_payment = create_payment,
    .get_payment = get_payment,
    .charge = charge,
    .refund = refund,
};

rpc_status payments_service_register(rpc_server *srv, payments_service *svc)
{
	if (svc == NULL || svc->pool == NULL)
		return RPC_STATUS_INVALID_ARGUMENT;
	/* the outbox of PaymentSucceeded, PaymentFailed, PaymentRefunded */
	rpc_status st = ev_outbox_setup(svc->pool, PAYMENTS_SCHEMA);
	return st == RPC_STATUS_OK
	           ? panthera_payments_v1_payment_service_register(srv, &handlers, svc)
	           : st;
}
