/*
 * payments_internal.h - what the payments service's files share (internal):
 * text checks, a payment row in C, the store's SQL, and the two operations
 * that move money (charge, refund), used by the RPC handlers and by the
 * saga consumer alike.
 *
 * Every store and operation function runs on a connection inside the
 * caller's transaction.
 */
#ifndef PANTHERA_PAYMENTS_INTERNAL_H
#define PANTHERA_PAYMENTS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "panthera/db.h"
#include "panthera/ids.h"
#include "panthera/money.h"
#include "payments.h"

#define PAY_STATUS_TEXT   16
#define PAY_PROVIDER_NAME 64
#define PAY_KEY_MAX       255    /* characters: idempotency keys, payment method ids */
#define PAY_PROVIDER_WAIT 10000u /* ms: the most a provider call may take */

/* ---- a payment row ---- */

typedef struct pay_record {
	char id[ID_UUID_LEN + 1];
	char order_id[ID_UUID_LEN + 1];
	char user_id[ID_UUID_LEN + 1];
	char amount[MONEY_TEXT];
	char currency[4];
	char status[PAY_STATUS_TEXT]; /* "SUCCEEDED", "FAILED", "REFUNDED" */
	char failure_reason[PAYMENTS_REASON_MAX];
	char refunded_amount[MONEY_TEXT];
	char provider[PAY_PROVIDER_NAME];
	char provider_ref[PAYMENTS_PROVIDER_REF_MAX];
	int64_t created_us, updated_us; /* Unix microseconds */
} pay_record;

/* ---- SQL (store.c) ---- */

/* Serialise the transactions that use `key` in `scope` until commit (an
 * advisory lock), also before any row with it exists. */
rpc_status pay_store_lock(db_conn *c, const char *scope, const char *key);

/* The payment made under `idempotency_key`; NOT_FOUND when none. */
rpc_status pay_store_by_key(db_conn *c, const char *idempotency_key, pay_record *out);

/* The payment `id`, locked FOR UPDATE when `lock`; NOT_FOUND. */
rpc_status pay_store_get(db_conn *c, const char *id, int lock, pay_record *out);

/* Insert `rec` (id, order, user, amount, currency, status, failure reason,
 * provider, provider_ref) made with `payment_method_id` under
 * `idempotency_key`; fills the rest of `rec` (refunded amount, times). */
rpc_status pay_store_insert(db_conn *c, pay_record *rec, const char *payment_method_id,
                            const char *idempotency_key);

/* Mark the payment REFUNDED in full; `rec` gets the row as it is now. */
rpc_status pay_store_set_refunded(db_conn *c, const char *id, pay_record *rec);

/* How many payments of `order_id` are recorded (any status) into *n. */
rpc_status pay_store_count_order(db_conn *c, const char *order_id, long *n);

/* CreatePayment's Idempotency-Key: the payment of (user, key) recorded less
 * than 24 hours ago into payment_id[37]; NOT_FOUND. */
rpc_status pay_store_find_key(db_conn *c, const char *user_id, const char *key,
                              char payment_id[ID_UUID_LEN + 1]);

/* Record (user, key) -> payment_id, replacing an expired record of the
 * same key, and drop the user's other expired keys. */
rpc_status pay_store_remember_key(db_conn *c, const char *user_id, const char *key,
                                  const char *payment_id);

/* The event of `rec` as it is now into payments.outbox: PaymentSucceeded,
 * PaymentFailed or PaymentRefunded, by its status. */
rpc_status pay_store_publish(db_conn *c, const pay_record *rec);

/* ---- moving money (charge.c) ---- */

/* Why an operation refused, beyond the status it returned. */
typedef enum pay_fault {
	PAY_FAULT_NONE = 0,
	PAY_FAULT_PROVIDER_DOWN,    /* the provider could not be reached */
	PAY_FAULT_PROVIDER_ERROR,   /* the provider failed otherwise (its bug) */
	PAY_FAULT_PROVIDER_REFUSED, /* the provider refused a refund */
	PAY_FAULT_NOT_SUCCEEDED,    /* a refund of a payment that did not succeed */
} pay_fault;

typedef struct pay_charge_req {
	const char *order_id, *user_id; /* UUIDs */
	int64_t amount_cents;           /* > 0 */
	const char *currency;           /* checked by money_currency_valid */
	const char *payment_method_id;  /* 1..255 bytes */
	const char *idempotency_key;    /* 1..255 bytes */
	uint32_t timeout_ms;            /* for the provider; 0: PAY_PROVIDER_WAIT */
} pay_charge_req;

/*
 * The payment made under req->idempotency_key if there is one (*created
 * 0); else charge through `provider` and record the payment with its event
 * (*created 1). UNAVAILABLE with *fault PAY_FAULT_PROVIDER_DOWN when the
 * provider could not be reached, INTERNAL with PAY_FAULT_PROVIDER_ERROR when
 * it failed otherwise: nothing is recorded then.
 */
rpc_status pay_charge(db_conn *c, const payments_provider *provider, const pay_charge_req *req,
                      pay_record *out, int *created, pay_fault *fault);

/*
 * Refund the whole amount of the SUCCEEDED payment `payment_id` through
 * `provider` and record it REFUNDED with its event; a REFUNDED payment is
 * returned as it is. NOT_FOUND; FAILED_PRECONDITION with *fault
 * PAY_FAULT_NOT_SUCCEEDED (out->status says which) or
 * PAY_FAULT_PROVIDER_REFUSED; UNAVAILABLE with PAY_FAULT_PROVIDER_DOWN.
 */
rpc_status pay_refund(db_conn *c, const payments_provider *provider, const char *payment_id,
                      uint32_t timeout_ms, pay_record *out, pay_fault *fault);

/* The provider of the service: its own, or the built-in test provider. */
const payments_provider *pay_provider_of(const payments_service *svc);

#endif /* PANTHERA_PAYMENTS_INTERNAL_H */
