/*
 * remote.c - the order service's calls to inventory and payments, shared
 * by the RPC handlers and the saga's consumer. Each passes the caller's
 * deadline and request id on; each method called here is idempotent on the
 * order (or payment) id, so a retry or a redelivered event repeats it
 * harmlessly.
 */
#include <stdio.h>
#include <string.h>

#include "orders_internal.h"
#include "panthera/inventory/v1/inventory.panthera.h"
#include "panthera/payments/v1/payments.panthera.h"

#define ORD_REMOTE_TIMEOUT_MS 5000u

int ord_opts_init(ord_opts *o, rpc_call *call, uint32_t fallback_ms)
{
	memset(o, 0, sizeof(*o));
	uint32_t left = fallback_ms ? fallback_ms : ORD_REMOTE_TIMEOUT_MS;
	if (call != NULL) {
		left = rpc_call_remaining_ms(call);
		if (left == 0)
			return 0;
		const char *request_id = rpc_call_metadata(call, "x-request-id");
		if (request_id != NULL) {
			o->md[0].key = "x-request-id";
			o->md[0].value = request_id;
			o->o.metadata = o->md;
			o->o.n_metadata = 1;
		}
	}
	o->o.timeout_ms = left < ORD_REMOTE_TIMEOUT_MS ? left : ORD_REMOTE_TIMEOUT_MS;
	o->o.max_retries = 1;
	return 1;
}

/* The status of a failed downstream call, its message into why[]. */
static rpc_status failed(rpc_status st, rpc_reply *reply, const char *what, char *why,
                         size_t why_len)
{
	const char *m = reply != NULL ? rpc_reply_message(reply) : NULL;
	if (why != NULL)
		snprintf(why, why_len, "%s: %s%s%s", what, rpc_status_name(st), m ? ": " : "",
		         m ? m : "");
	return st;
}

rpc_status ord_inventory_step(orders_service *svc, ord_opts *o, int which, const char *order_id,
                              char *why, size_t why_len)
{
	rpc_reply *reply = NULL;
	const Panthera__Inventory__V1__Reservation *res = NULL;
	rpc_status st;
	const char *what;
	switch (which) {
	case ORD_INV_COMMIT: {
		Panthera__Inventory__V1__CommitRequest r =
		    PANTHERA__INVENTORY__V1__COMMIT_REQUEST__INIT;
		r.order_id = (char *)order_id;
		what = "InventoryService.Commit";
		st = panthera_inventory_v1_inventory_service_commit(svc->inventory, &r, &o->o, &res,
		                                                    &reply);
		break;
	}
	case ORD_INV_RELEASE: {
		Panthera__Inventory__V1__ReleaseRequest r =
		    PANTHERA__INVENTORY__V1__RELEASE_REQUEST__INIT;
		r.order_id = (char *)order_id;
		what = "InventoryService.Release";
		st = panthera_inventory_v1_inventory_service_release(svc->inventory, &r, &o->o,
		                                                     &res, &reply);
		break;
	}
	default: {
		Panthera__Inventory__V1__RestockRequest r =
		    PANTHERA__INVENTORY__V1__RESTOCK_REQUEST__INIT;
		r.order_id = (char *)order_id;
		what = "InventoryService.Restock";
		st = panthera_inventory_v1_inventory_service_restock(svc->inventory, &r, &o->o,
		                                                     &res, &reply);
		break;
	}
	}
	if (st != RPC_STATUS_OK)
		failed(st, reply, what, why, why_len);
	rpc_reply_free(reply);
	return st;
}

rpc_status ord_refund_payment(orders_service *svc, ord_opts *o, const char *payment_id, char *why,
                              size_t why_len)
{
	if (svc->payments == NULL) {
		snprintf(why, why_len, "no PaymentService to refund payment %s through",
		         payment_id);
		return RPC_STATUS_UNAVAILABLE;
	}
	Panthera__Payments__V1__RefundRequest r = PANTHERA__PAYMENTS__V1__REFUND_REQUEST__INIT;
	r.payment_id = (char *)payment_id;
	rpc_reply *reply = NULL;
	const Panthera__Payments__V1__Payment *p = NULL;
	rpc_status st =
	    panthera_payments_v1_payment_service_refund(svc->payments, &r, &o->o, &p, &reply);
	if (st != RPC_STATUS_OK)
		failed(st, reply, "PaymentService.Refund", why, why_len);
	rpc_reply_free(reply);
	return st;
}
