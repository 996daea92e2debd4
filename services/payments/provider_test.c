/*
 * provider_test.c - the built-in test provider (payments_provider.h): the
 * Stripe-style test payment methods of API.md, no network, no state.
 *
 * Its charge reference is derived from the idempotency key, so a repeated
 * key gets the same reference, as a real provider's idempotent replay
 * would; the outcome depends only on the payment method.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "payments_provider.h"

#define TEST_REF_PREFIX "ch_test_"

/* FNV-1a, 64 bits, from `seed`: enough to name a test charge by its key. */
static uint64_t fnv1a(const char *s, uint64_t seed)
{
	uint64_t h = seed;
	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ull;
	}
	return h;
}

static rpc_status test_charge(void *ctx, int64_t amount_cents, const char *currency,
                              const char *payment_method_id, const char *idempotency_key,
                              uint32_t timeout_ms, payments_charge_result *out)
{
	(void)ctx;
	(void)currency;
	(void)timeout_ms;
	if (amount_cents <= 0 || payment_method_id == NULL || idempotency_key == NULL)
		return RPC_STATUS_INVALID_ARGUMENT;
	static const struct {
		const char *method;
		const char *reason; /* NULL: succeeds */
	} methods[] = {
	    {"pm_card_visa", NULL},
	    {"pm_card_mastercard", NULL},
	    {"pm_card_declined", PAYMENTS_REASON_CARD_DECLINED},
	    {"pm_card_insufficient_funds", PAYMENTS_REASON_INSUFFICIENT_FUNDS},
	};
	const char *reason = PAYMENTS_REASON_INVALID_METHOD;
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		if (strcmp(payment_method_id, methods[i].method) == 0)
			reason = methods[i].reason;
	}
	out->succeeded = reason == NULL;
	snprintf(out->failure_reason, sizeof(out->failure_reason), "%s", reason ? reason : "");
	snprintf(out->provider_ref, sizeof(out->provider_ref),
	         TEST_REF_PREFIX "%016" PRIx64 "%016" PRIx64,
	         fnv1a(idempotency_key, 0xcbf29ce484222325ull),
	         fnv1a(idempotency_key, 0x84222325cbf29ce4ull));
	return RPC_STATUS_OK;
}

static rpc_status test_refund(void *ctx, const char *provider_ref, int64_t amount_cents,
                              const char *currency, const char *idempotency_key,
                              uint32_t timeout_ms)
{
	(void)ctx;
	(void)currency;
	(void)idempotency_key;
	(void)timeout_ms;
	if (provider_ref == NULL || amount_cents <= 0)
		return RPC_STATUS_INVALID_ARGUMENT;
	size_t n = strlen(TEST_REF_PREFIX);
	if (strncmp(provider_ref, TEST_REF_PREFIX, n) != 0 || strlen(provider_ref) != n + 32)
		return RPC_STATUS_NOT_FOUND; /* not a charge of ours */
	return RPC_STATUS_OK;
}

static const payments_provider test_provider = {
    .name = "test",
    .ctx = NULL,
    .charge = test_charge,
    .refund = test_refund,
};

const payments_provider *payments_test_provider(void)
{
	return &test_provider;
}
