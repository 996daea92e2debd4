/*
 * payments_provider.h - the payment provider interface of the payments
 * service, and the built-in test provider.
 *
 * A provider moves the money: it charges an amount to a payment method
 * (a token the provider issued, e.g. "pm_card_visa"; never card data) and
 * refunds a charge by the reference it returned. The service records what
 * the provider answered; it never sees or stores a card number.
 *
 * Outcomes: a provider that answered returns RPC_STATUS_OK, whether the
 * charge succeeded or was refused (a refusal is a FAILED payment, not an
 * error). A provider that could not be reached or did not answer in time
 * returns RPC_STATUS_UNAVAILABLE or RPC_STATUS_DEADLINE_EXCEEDED: nothing
 * is recorded and the caller gets UNAVAILABLE, so that it tries again later.
 *
 * Idempotency: every call carries a key, the same for every attempt of the
 * same charge or refund. A provider must answer a repeated key with the
 * first outcome and move no money twice (Stripe's Idempotency-Key header is
 * exactly this), because the service calls the provider inside a database
 * transaction that may fail and be run again after the provider answered.
 *
 * Thread-safety: a provider's functions are called from several threads at
 * once (RPC workers and the event consumer) with the same `ctx`.
 */
#ifndef PANTHERA_PAYMENTS_PROVIDER_H
#define PANTHERA_PAYMENTS_PROVIDER_H

#include <stddef.h>
#include <stdint.h>

#include "panthera/rpc_status.h"

/* Sizes of the strings a provider fills in, NUL included. */
#define PAYMENTS_REASON_MAX       32
#define PAYMENTS_PROVIDER_REF_MAX 128

/* The failure reasons of the API (Payment.failure_reason). A provider maps
 * its own decline codes onto these; the service records any other text as
 * "card_declined". */
#define PAYMENTS_REASON_CARD_DECLINED      "card_declined"
#define PAYMENTS_REASON_INSUFFICIENT_FUNDS "insufficient_funds"
#define PAYMENTS_REASON_INVALID_METHOD     "invalid_payment_method"

/* What a provider answered to a charge. */
typedef struct payments_charge_result {
	/* 1: the amount was captured; 0: refused, see failure_reason. */
	int succeeded;
	/* When refused: one of the PAYMENTS_REASON_* texts. "" otherwise. */
	char failure_reason[PAYMENTS_REASON_MAX];
	/* The provider's id of the charge (needed to refund it); may be "" for
	 * a refused charge. Printable ASCII. */
	char provider_ref[PAYMENTS_PROVIDER_REF_MAX];
} payments_charge_result;

typedef struct payments_provider {
	/* Short name recorded with each payment, e.g. "test", "stripe". */
	const char *name;
	/* Handed to both functions; the provider's own state (a connection
	 * pool, an API key), or NULL. */
	void *ctx;
	/*
	 * Charge `amount_cents` (> 0) of `currency` (ISO 4217, "USD") to
	 * `payment_method_id` (1..255 bytes) under `idempotency_key` (1..255
	 * bytes), answering within `timeout_ms`. OK with *out filled when the
	 * provider answered (succeeded or refused); UNAVAILABLE or
	 * DEADLINE_EXCEEDED when it could not be reached. *out is zeroed by the
	 * caller.
	 */
	rpc_status (*charge)(void *ctx, int64_t amount_cents, const char *currency,
	                     const char *payment_method_id, const char *idempotency_key,
	                     uint32_t timeout_ms, payments_charge_result *out);
	/*
	 * Refund `amount_cents` of the charge `provider_ref` (as returned by
	 * charge) under `idempotency_key`, within `timeout_ms`. OK when
	 * refunded (also when a repeated key finds it refunded already);
	 * UNAVAILABLE or DEADLINE_EXCEEDED when the provider could not be
	 * reached; any other status when it refused (unknown charge, already
	 * refunded under another key).
	 */
	rpc_status (*refund)(void *ctx, const char *provider_ref, int64_t amount_cents,
	                     const char *currency, const char *idempotency_key,
	                     uint32_t timeout_ms);
} payments_provider;

/*
 * The built-in test provider ("test"), with Stripe-style test payment
 * methods: "pm_card_visa" and "pm_card_mastercard" succeed;
 * "pm_card_declined" is refused with "card_declined",
 * "pm_card_insufficient_funds" with "insufficient_funds", anything else with
 * "invalid_payment_method". Its references are "ch_test_" and 32 hex digits;
 * it refunds any such reference and refuses (NOT_FOUND) any other. It keeps
 * no state and never fails to answer. Constant; any thread.
 */
const payments_provider *payments_test_provider(void);

#endif /* PANTHERA_PAYMENTS_PROVIDER_H */
