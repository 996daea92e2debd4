/*
 * base64.c - RFC 4648 base64 in both alphabets, padded or not; see
 * panthera/base64.h. Every length is checked against its buffer before a
 * byte is written, so no caller's arithmetic is trusted.
 */
#include "panthera/base64.h"

#define ALPHABETS (BASE64_STD | BASE64_URL)

static const char std_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t base64_encoded_len(size_t n, unsigned flags)
{
	if (n > BASE64_ENCODE_MAX)
		return 0;
	if (flags & BASE64_PAD)
		return (n + 2) / 3 * 4;
	return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
}

int base64_encode(const void *in, size_t n, unsigned flags, char *out, size_t cap, size_t *out_len)
{
	unsigned alphabet = flags & ALPHABETS;
	if (cap > 0)
		out[0] = '\0';
	if ((alphabet != BASE64_STD && alphabet != BASE64_URL) || n > BASE64_ENCODE_MAX)
		return -1;
	size_t len = base64_encoded_len(n, flags);
	if (len >= cap)
		return -1; /* no room for the text and its NUL */
	const char *a = alphabet == BASE64_URL ? url_alphabet : std_alphabet;
	const uint8_t *p = in;
	size_t i = 0, o = 0;
	for (; n - i >= 3; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		out[o++] = a[v >> 18];
		out[o++] = a[(v >> 12) & 63];
		out[o++] = a[(v >> 6) & 63];
		out[o++] = a[v & 63];
	}
	if (n - i > 0) {
		/* one or two bytes left: two or three characters */
		uint32_t v = (uint32_t)p[i] << 16 | (n - i == 2 ? (uint32_t)p[i + 1] << 8 : 0);
		out[o++] = a[v >> 18];
		out[o++] = a[(v >> 12) & 63];
		if (n - i == 2)
			out[o++] = a[(v >> 6) & 63];
		if (flags & BASE64_PAD) {
			out[o++] = '=';
			if (n - i == 1)
				out[o++] = '=';
		}
	}
	out[o] = '\0';
	if (out_len != NULL)
		*out_len = o;
	return 0;
}

size_t base64_decoded_max(size_t len)
{
	return len / 4 * 3 + (len % 4 > 1 ? len % 4 - 1 : 0);
}

/* The 6-bit value of c in the alphabets of `flags`, or -1. */
static int value_of(unsigned char c, unsigned flags)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (flags & BASE64_STD) {
		if (c == '+')
			return 62;
		if (c == '/')
			return 63;
	}
	if (flags & BASE64_URL) {
		if (c == '-')
			return 62;
		if (c == '_')
			return 63;
	}
	return -1;
}

int base64_decode(const char *in, size_t len, unsigned flags, uint8_t *out, size_t cap,
                  size_t *out_len)
{
	if ((flags & ALPHABETS) == 0)
		return -1;
	size_t m = len; /* the characters that carry bits */
	if (flags & (BASE64_PAD | BASE64_PAD_OPTIONAL)) {
		size_t pad = 0;
		while (pad < 2 && m > 0 && in[m - 1] == '=') {
			m--;
			pad++;
		}
		/* Padded text is whole groups of 4, so its '=' count is exact. */
		if ((pad > 0 || !(flags & BASE64_PAD_OPTIONAL)) && len % 4 != 0)
			return -1;
	}
	if (m % 4 == 1)
		return -1; /* no byte count encodes to this length */
	size_t need = base64_decoded_max(m);
	if (need > cap)
		return -1;
	uint32_t acc = 0;
	unsigned bits = 0;
	size_t o = 0;
	for (size_t i = 0; i < m; i++) {
		int v = value_of((unsigned char)in[i], flags);
		if (v < 0)
			return -1;
		acc = (acc << 6 | (uint32_t)v) & 0xffffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (uint8_t)(acc >> bits);
		}
	}
	/* 0, 2 or 4 bits are left over; canonical text has them zero */
	if ((flags & BASE64_CANONICAL) && (acc & ((1u << bits) - 1)) != 0)
		return -1;
	*out_len = o;
	return 0;
}
