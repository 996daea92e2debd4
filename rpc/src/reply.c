/*
 * reply.c - the client's view of a finished call: status, message,
 * metadata, error details and the decoded response, all in one arena that
 * rpc_reply_free() releases.
 */
#include "rpc_internal.h"

#include <stdlib.h>
#include <string.h>

static rpc_reply *reply_alloc(size_t max_message)
{
	rpc_reply *r = malloc(sizeof(*r));
	if (r == NULL)
		return NULL;
	memset(r, 0, offsetof(rpc_reply, arena));
	/* A decoded message can take several times its wire size; bound it
	 * as the server bounds a call. */
	size_t limit =
	    max_message > (SIZE_MAX - (1u << 20)) / 8 ? SIZE_MAX : 8 * max_message + (1u << 20);
	rpc_arena_init(&r->arena, r->inline_arena, sizeof(r->inline_arena), limit);
	r->message = "";
	return r;
}

rpc_reply *rpc_reply_new_status(rpc_status status, const char *message)
{
	rpc_reply *r = reply_alloc(RPC_WIRE_MAX_MESSAGE);
	if (r == NULL)
		return NULL;
	r->status = status;
	if (message != NULL) {
		char *m =
		    rpc_arena_strndup(&r->arena, message, strnlen(message, RPC_WIRE_MAX_MESSAGE));
		if (m != NULL) {
			rpc_wire_text_sanitize(m, RPC_WIRE_MAX_MESSAGE);
			r->message = m;
		}
	}
	return r;
}

rpc_reply *rpc_reply_decode(const rpc_method_desc *method, const uint8_t *frame, size_t len,
                            size_t max_message)
{
	rpc_reply *r = reply_alloc(max_message);
	if (r == NULL)
		return NULL;
	rpc_wire_reply wr;
	rpc_wire_error e = rpc_wire_decode_reply(frame, len, &r->arena, &wr);
	if (e != RPC_WIRE_OK) {
		rpc_reply_free(r);
		return rpc_reply_new_status(
		    e == RPC_WIRE_NO_MEMORY ? RPC_STATUS_RESOURCE_EXHAUSTED : RPC_STATUS_INTERNAL,
		    e == RPC_WIRE_NO_MEMORY ? "out of memory decoding the reply"
		                            : rpc_wire_strerror(e));
	}
	r->status = wr.status;
	r->message = wr.message;
	r->metadata = wr.metadata;
	r->n_metadata = wr.n_metadata;
	if (wr.status != RPC_STATUS_OK && wr.details_len > 0 && wr.details_len <= RPC_MAX_DETAILS) {
		/* Details that do not decode are dropped: the status stands. */
		r->details = (Panthera__Rpc__V1__ErrorDetails *)protobuf_c_message_unpack(
		    &panthera__rpc__v1__error_details__descriptor, &r->arena.pb, wr.details_len,
		    wr.details);
	}
	if (wr.status == RPC_STATUS_OK) {
		if (wr.payload_len > max_message) {
			rpc_reply_free(r);
			return rpc_reply_new_status(RPC_STATUS_RESOURCE_EXHAUSTED,
			                            "reply larger than the message size limit");
		}
		r->payload = protobuf_c_message_unpack(method->output, &r->arena.pb, wr.payload_len,
		                                       wr.payload);
		if (r->payload == NULL) {
			rpc_reply_free(r);
			return rpc_reply_new_status(RPC_STATUS_INTERNAL,
			                            "reply payload does not decode");
		}
	}
	return r;
}

rpc_status rpc_reply_status(const rpc_reply *reply)
{
	return reply ? reply->status : RPC_STATUS_RESOURCE_EXHAUSTED;
}

const char *rpc_reply_message(const rpc_reply *reply)
{
	return reply ? reply->message : "out of memory";
}

const ProtobufCMessage *rpc_reply_payload(const rpc_reply *reply)
{
	return (reply != NULL && reply->status == RPC_STATUS_OK) ? reply->payload : NULL;
}

const char *rpc_reply_metadata(const rpc_reply *reply, const char *key)
{
	if (reply == NULL || key == NULL)
		return NULL;
	for (size_t i = 0; i < reply->n_metadata; i++) {
		if (strcmp(reply->metadata[i].key, key) == 0)
			return reply->metadata[i].value;
	}
	return NULL;
}

const char *rpc_reply_error_reason(const rpc_reply *reply)
{
	if (reply == NULL || reply->details == NULL || reply->details->error_info == NULL ||
	    reply->details->error_info->reason == NULL)
		return "";
	return reply->details->error_info->reason;
}

const ProtobufCMessage *rpc_reply_details(const rpc_reply *reply)
{
	return (reply != NULL && reply->details != NULL) ? &reply->details->base : NULL;
}

void rpc_reply_free(rpc_reply *reply)
{
	if (reply == NULL)
		return;
	rpc_arena_destroy(&reply->arena);
	free(reply);
}
