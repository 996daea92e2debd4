/*
 * call.c - the server-side call context handlers see, and the encoding of
 * its reply frame.
 */
#include "rpc_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

uint64_t rpc_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void rpc_stats_record(rpc_method_stats *s, rpc_status st, uint64_t us)
{
	if ((unsigned)st >= RPC_STATUS_COUNT)
		st = RPC_STATUS_UNKNOWN;
	atomic_fetch_add_explicit(&s->calls[st], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->total_us[st], us, memory_order_relaxed);
}

void rpc_stats_report(const rpc_method_stats *s, rpc_metrics_fn fn, void *arg)
{
	for (unsigned i = 0; i < RPC_STATUS_COUNT; i++) {
		uint64_t n = atomic_load_explicit(&s->calls[i], memory_order_relaxed);
		if (n > 0)
			fn(s->method, (rpc_status)i, n,
			   atomic_load_explicit(&s->total_us[i], memory_order_relaxed), arg);
	}
}

void rpc_call_init(rpc_call *call, size_t memory_limit)
{
	memset(call, 0, offsetof(rpc_call, arena));
	rpc_arena_init(&call->arena, call->inline_arena, sizeof(call->inline_arena), memory_limit);
}

void rpc_call_reset(rpc_call *call)
{
	rpc_arena_reset(&call->arena);
	memset(call, 0, offsetof(rpc_call, arena));
}

void *rpc_call_alloc(rpc_call *call, size_t size)
{
	return call ? rpc_arena_alloc(&call->arena, size) : NULL;
}

const rpc_method_desc *rpc_call_method(const rpc_call *call)
{
	return call->method;
}

uint32_t rpc_call_remaining_ms(const rpc_call *call)
{
	if (call->deadline_us == 0)
		return UINT32_MAX;
	uint64_t now = rpc_now_us();
	if (now >= call->deadline_us)
		return 0;
	uint64_t ms = (call->deadline_us - now) / 1000u;
	return ms >= UINT32_MAX ? UINT32_MAX - 1 : (uint32_t)ms;
}

const char *rpc_call_metadata(const rpc_call *call, const char *key)
{
	if (key == NULL)
		return NULL;
	for (size_t i = 0; i < call->n_metadata; i++) {
		if (strcmp(call->metadata[i].key, key) == 0)
			return call->metadata[i].value;
	}
	return NULL;
}

const rpc_metadata_entry *rpc_call_metadata_all(const rpc_call *call, size_t *n)
{
	*n = call->n_metadata;
	return call->metadata;
}

rpc_status rpc_call_set_reply_metadata(rpc_call *call, const char *key, const char *value)
{
	if (!rpc_wire_metadata_valid(key, value))
		return RPC_STATUS_INVALID_ARGUMENT;
	if (call->n_reply_md >= RPC_MAX_REPLY_METADATA)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	char *k = rpc_arena_strndup(&call->arena, key, strlen(key));
	char *v = rpc_arena_strndup(&call->arena, value, strlen(value));
	if (k == NULL || v == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	call->reply_md[call->n_reply_md].key = k;
	call->reply_md[call->n_reply_md].value = v;
	call->n_reply_md++;
	return RPC_STATUS_OK;
}

rpc_status rpc_call_error(rpc_call *call, rpc_status code, const char *fmt, ...)
{
	char buf[RPC_WIRE_MAX_MESSAGE + 1];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		buf[0] = '\0';
	rpc_wire_text_sanitize(buf, RPC_WIRE_MAX_MESSAGE);
	char *m = rpc_arena_strndup(&call->arena, buf, strlen(buf));
	if (m != NULL)
		call->message = m;
	return code;
}

static void details_init(rpc_details_builder *d)
{
	if (d->details.base.descriptor == NULL) {
		panthera__rpc__v1__error_details__init(&d->details);
		google__rpc__error_info__init(&d->info);
		google__rpc__bad_request__init(&d->bad);
	}
}

rpc_status rpc_call_set_error_reason(rpc_call *call, const char *reason, const char *domain)
{
	if (reason == NULL || reason[0] == '\0')
		return RPC_STATUS_INVALID_ARGUMENT;
	rpc_details_builder *d = &call->details;
	details_init(d);
	if (domain == NULL)
		domain = "panthera.dev";
	char *r = rpc_arena_strndup(&call->arena, reason, strnlen(reason, 256));
	char *dm = rpc_arena_strndup(&call->arena, domain, strnlen(domain, 256));
	if (r == NULL || dm == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	/* proto3 strings must be UTF-8: strict decoders refuse anything else */
	rpc_wire_text_sanitize(r, 255);
	rpc_wire_text_sanitize(dm, 255);
	d->info.reason = r;
	d->info.domain = dm;
	d->details.error_info = &d->info;
	return RPC_STATUS_OK;
}

rpc_status rpc_call_add_field_violation(rpc_call *call, const char *field, const char *description)
{
	if (field == NULL || description == NULL)
		return RPC_STATUS_INVALID_ARGUMENT;
	rpc_details_builder *d = &call->details;
	details_init(d);
	if (d->n_violations >= 256)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	if (d->n_violations == d->cap_violations) {
		size_t cap = d->cap_violations ? d->cap_violations * 2 : 8;
		Google__Rpc__BadRequest__FieldViolation **nv =
		    rpc_arena_calloc(&call->arena, cap, sizeof(*nv));
		if (nv == NULL)
			return RPC_STATUS_RESOURCE_EXHAUSTED;
		if (d->n_violations > 0)
			memcpy(nv, d->violations, d->n_violations * sizeof(*nv));
		d->violations = nv;
		d->cap_violations = cap;
	}
	Google__Rpc__BadRequest__FieldViolation *v = rpc_arena_alloc(&call->arena, sizeof(*v));
	char *f = rpc_arena_strndup(&call->arena, field, strnlen(field, 1024));
	char *ds = rpc_arena_strndup(&call->arena, description, strnlen(description, 1024));
	if (v == NULL || f == NULL || ds == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	rpc_wire_text_sanitize(f, 1023);
	rpc_wire_text_sanitize(ds, 1023);
	google__rpc__bad_request__field_violation__init(v);
	v->field = f;
	v->description = ds;
	d->violations[d->n_violations++] = v;
	d->bad.field_violations = d->violations;
	d->bad.n_field_violations = d->n_violations;
	d->details.bad_request = &d->bad;
	return RPC_STATUS_OK;
}

nng_msg *rpc_encode_status_reply(rpc_status status, const char *message)
{
	size_t size = rpc_wire_reply_size(message, NULL, 0, 0, 0);
	nng_msg *msg;
	if (size == 0 || nng_msg_alloc(&msg, size) != 0)
		return NULL;
	rpc_wire_encode_reply(nng_msg_body(msg), status, message, NULL, 0, NULL, 0, 0);
	return msg;
}

nng_msg *rpc_call_encode_reply(rpc_call *call, rpc_status status, const ProtobufCMessage *resp,
                               size_t max_message, rpc_status *sent)
{
	*sent = status;
	const char *message = call->message ? call->message : "";
	if (status == RPC_STATUS_OK)
		message = "";
	size_t payload_len = 0;
	if (status == RPC_STATUS_OK && resp != NULL) {
		payload_len = protobuf_c_message_get_packed_size(resp);
		if (payload_len > max_message) {
			*sent = RPC_STATUS_RESOURCE_EXHAUSTED;
			return rpc_encode_status_reply(*sent,
			                               "reply larger than the message size limit");
		}
	}
	/* Details: packed into the arena first. */
	uint8_t *details = NULL;
	size_t details_len = 0;
	if (status != RPC_STATUS_OK && call->details.details.base.descriptor != NULL) {
		details_len = protobuf_c_message_get_packed_size(&call->details.details.base);
		details = rpc_arena_alloc(&call->arena, details_len);
		if (details == NULL)
			return rpc_encode_status_reply(RPC_STATUS_RESOURCE_EXHAUSTED,
			                               "out of memory");
		protobuf_c_message_pack(&call->details.details.base, details);
	}
	size_t size = rpc_wire_reply_size(message, call->reply_md, call->n_reply_md, details_len,
	                                  payload_len);
	nng_msg *msg;
	if (size == 0) {
		*sent = RPC_STATUS_INTERNAL;
		return rpc_encode_status_reply(*sent, "reply could not be encoded");
	}
	if (nng_msg_alloc(&msg, size) != 0) {
		*sent = RPC_STATUS_RESOURCE_EXHAUSTED;
		return rpc_encode_status_reply(*sent, "out of memory");
	}
	uint8_t *body = nng_msg_body(msg);
	rpc_wire_encode_reply(body, status, message, call->reply_md, call->n_reply_md, details,
	                      details_len, payload_len);
	if (payload_len > 0)
		protobuf_c_message_pack(resp, body + size - payload_len);
	return msg;
}
