/*
 * fuzz_wire_frame.c - the RPC frame decoders on arbitrary bytes: request
 * and reply, with and without an arena limit. Nothing may crash, leak or
 * read out of bounds; a frame that decodes must re-encode to the same bytes.
 */
#include <string.h>

#include "arena.h"
#include "fuzz_main.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	rpc_arena a;
	rpc_arena_init(&a, NULL, 0, size > 0 ? 64u * data[0] : 0);
	rpc_wire_request rq;
	if (rpc_wire_decode_request(data, size, &a, &rq) == RPC_WIRE_OK) {
		size_t n =
		    rpc_wire_request_size(rq.method, rq.metadata, rq.n_metadata, rq.payload_len);
		uint8_t *again = malloc(n ? n : 1);
		if (again != NULL && n == size) {
			rpc_wire_encode_request(again, rq.timeout_ms, rq.method, rq.metadata,
			                        rq.n_metadata, rq.payload_len);
			memcpy(again + n - rq.payload_len, rq.payload, rq.payload_len);
			if (memcmp(again, data, size) != 0)
				abort(); /* fuzz target: a mismatch is the finding */
		} else if (again != NULL) {
			abort();
		}
		free(again);
	}
	rpc_arena_reset(&a);
	rpc_wire_reply rp;
	(void)rpc_wire_decode_reply(data, size, &a, &rp);
	rpc_arena_destroy(&a);
	return 0;
}
