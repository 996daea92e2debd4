/*
 * ids.c - UUIDs from OpenSSL's random generator.
 */
#include "panthera/ids.h"

#include <openssl/rand.h>

rpc_status id_uuid4(char out[ID_UUID_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char b[16];
	out[0] = '\0';
	if (RAND_bytes(b, sizeof(b)) != 1)
		return RPC_STATUS_INTERNAL;
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* variant 10 */
	size_t o = 0;
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[b[i] >> 4];
		out[o++] = hex[b[i] & 0x0f];
	}
	out[o] = '\0';
	return RPC_STATUS_OK;
}

int id_is_uuid(const char *s)
{
	if (s == NULL)
		return 0;
	for (int i = 0; i < ID_UUID_LEN; i++) {
		char c = s[i];
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (c != '-')
				return 0;
		} else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
		             (c >= 'A' && c <= 'F'))) {
			return 0;
		}
	}
	return s[ID_UUID_LEN] == '\0';
}
