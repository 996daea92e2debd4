/*
 * fuzz_wire_metadata.c - the metadata block decoder on arbitrary bytes,
 * under an arena limit taken from the input. Every entry it returns must
 * satisfy the rules the encoder checks.
 */
#include <string.h>

#include "arena.h"
#include "fuzz_main.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	rpc_arena a;
	rpc_arena_init(&a, NULL, 0, 256u * data[0]);
	rpc_metadata_entry *md;
	size_t n, used;
	if (rpc_wire_decode_metadata(data + 1, size - 1, &a, &md, &n, &used) == RPC_WIRE_OK) {
		if (used > size - 1)
			abort();
		for (size_t i = 0; i < n; i++) {
			if (!rpc_wire_metadata_valid(md[i].key, md[i].value))
				abort();
		}
	}
	rpc_arena_destroy(&a);
	return 0;
}
