/*
 * money.c - the free-form text the payments service stores (payment
 * method ids, idempotency keys); amounts and currencies are checked with
 * panthera/money.h.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "payments_internal.h"

/* Length of the UTF-8 sequence at `p` (1..4), or 0 when it is not a valid
 * one: no overlong form, surrogate or code point past U+10FFFF. */
static size_t utf8_seq(const unsigned char *p)
{
	unsigned c = p[0];
	if (c < 0x80)
		return 1;
	size_t n;
	unsigned cp;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80) /* also stops at the NUL */
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

int pay_text_valid(const char *s, size_t max)
{
	if (s == NULL || *s == '\0')
		return 0;
	size_t chars = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; chars++) {
		if (chars == max || *p < 0x20 || *p == 0x7f)
			return 0;
		size_t n = utf8_seq(p);
		if (n == 0)
			return 0;
		p += n;
	}
	return 1;
}
