/*
 * charge.c - the two operations that move money, shared by the RPC
 * handlers and the saga consumer: a charge made once per idempotency key,
 * and a whole refund made once per payment. Each calls the provider and
 * records the outcome with its event on the caller's connection, so the
 * payment and its event commit together or not at all.
 *
 * The provider is called inside the transaction, under an advisory lock on
 * the key: two charges with one key wait for each other, and the second
 * finds the first payment. If the transaction fails after the provider
 * answered, it is run again with the same key, and the provider replays
 * its first answer (payments_provider.h), so no money moves twice.
 */
#include <stdio.h>
#include <string.h>

#include "payments_internal.h"

static const char *const known_reasons[] = {
    PAYMENTS_REASON_CARD_DECLINED,
    PAYMENTS_REASON_INSUFFICIENT_FUNDS,
    PAYMENTS_REASON_INVALID_METHOD,
};

/* A provider's refusal as one of the API's reasons; an unknown text is a
 * plain decline. */
static const char *api_reason(const char *reason)
{
	for (size_t i = 0; i < sizeof(known_reasons) / sizeof(known_reasons[0]); i++) {
		if (strcmp(reason, known_reasons[i]) == 0)
			return known_reasons[i];
	}
	return PAYMENTS_REASON_CARD_DECLINED;
}

/* A reference fit to store: printable ASCII, else nothing. */
static void clean_ref(char *ref)
{
	for (const char *p = ref; *p != '\0'; p++) {
		if (*p < 0x20 || *p > 0x7e) {
			ref[0] = '\0';
			return;
		}
	}
}

const payments_provider *pay_provider_of(const payments_service *svc)
{
	return svc->provider != NULL ? svc->provider : payments_test_provider();
}

static int is_transport_failure(rpc_status st)
{
	return st == RPC_STATUS_UNAVAILABLE || st == RPC_STATUS_DEADLINE_EXCEEDED;
}

rpc_status pay_charge(db_conn *c, const payments_provider *provider, const pay_charge_req *req,
                      pay_record *out, int *created, pay_fault *fault)
{
	*created = 0;
	*fault = PAY_FAULT_NONE;
	rpc_status st = pay_store_lock(c, "charge", req->idempotency_key);
	if (st != RPC_STATUS_OK)
		return st;
	st = pay_store_by_key(c, req->idempotency_key, out);
	if (st != RPC_STATUS_NOT_FOUND)
		return st; /* charged before under this key (OK), or a database error */

	payments_charge_result res;
	memset(&res, 0, sizeof(res));
	st = provider->charge(provider->ctx, req->amount_cents, req->currency,
	                      req->payment_method_id, req->idempotency_key,
	                      req->timeout_ms ? req->timeout_ms : PAY_PROVIDER_WAIT, &res);
	if (st != RPC_STATUS_OK) {
		/* nothing happened that we could record */
		*fault =
		    is_transport_failure(st) ? PAY_FAULT_PROVIDER_DOWN : PAY_FAULT_PROVIDER_ERROR;
		return is_transport_failure(st) ? RPC_STATUS_UNAVAILABLE : RPC_STATUS_INTERNAL;
	}
	res.failure_reason[sizeof(res.failure_reason) - 1] = '\0';
	res.provider_ref[sizeof(res.provider_ref) - 1] = '\0';
	clean_ref(res.provider_ref);

	memset(out, 0, sizeof(*out));
	if ((st = id_uuid4(out->id)) != RPC_STATUS_OK)
		return st;
	snprintf(out->order_id, sizeof(out->order_id), "%s", req->order_id);
	snprintf(out->user_id, sizeof(out->user_id), "%s", req->user_id);
	money_format(out->amount, req->amount_cents);
	snprintf(out->currency, sizeof(out->currency), "%s", req->currency);
	snprintf(out->status, sizeof(out->status), "%s", res.succeeded ? "SUCCEEDED" : "FAILED");
	snprintf(out->failure_reason, sizeof(out->failure_reason), "%s",
	         res.succeeded ? "" : api_reason(res.failure_reason));
	snprintf(out->provider, sizeof(out->provider), "%s",
	         provider->name != NULL ? provider->name : "");
	snprintf(out->provider_ref, sizeof(out->provider_ref), "%s", res.provider_ref);
	st = pay_store_insert(c, out, req->payment_method_id, req->idempotency_key);
	if (st == RPC_STATUS_OK)
		st = pay_store_publish(c, out);
	if (st == RPC_STATUS_OK)
		*created = 1;
	return st;
}

rpc_status pay_refund(db_conn *c, const payments_provider *provider, const char *payment_id,
                      uint32_t timeout_ms, pay_record *out, pay_fault *fault)
{
	*fault = PAY_FAULT_NONE;
	rpc_status st = pay_store_get(c, payment_id, 1, out);
	if (st != RPC_STATUS_OK)
		return st;
	if (strcmp(out->status, "REFUNDED") == 0)
		return RPC_STATUS_OK; /* refunded before: the same answer again */
	if (strcmp(out->status, "SUCCEEDED") != 0) {
		*fault = PAY_FAULT_NOT_SUCCEEDED;
		return RPC_STATUS_FAILED_PRECONDITION;
	}
	int64_t cents;
	if (money_parse(out->amount, &cents) != 0)
		return RPC_STATUS_INTERNAL; /* numeric(12,2) always parses */
	char key[sizeof("refund:") + ID_UUID_LEN];
	snprintf(key, sizeof(key), "refund:%s", out->id);
	st = provider->refund(provider->ctx, out->provider_ref, cents, out->currency, key,
	                      timeout_ms ? timeout_ms : PAY_PROVIDER_WAIT);
	if (st != RPC_STATUS_OK) {
		*fault =
		    is_transport_failure(st) ? PAY_FAULT_PROVIDER_DOWN : PAY_FAULT_PROVIDER_REFUSED;
		return is_transport_failure(st) ? RPC_STATUS_UNAVAILABLE
		                                : RPC_STATUS_FAILED_PRECONDITION;
	}
	st = pay_store_set_refunded(c, out->id, out);
	return st == RPC_STATUS_OK ? pay_store_publish(c, out) : st;
}
