/*
 * money.c - the text the payments service accepts: amounts as decimal
 * strings with at most two places, ISO 4217 codes, and the free-form
 * tokens (payment method ids, idempotency keys) it stores.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "payments_internal.h"

/* Ten integer digits is what numeric(12,2) holds, and keeps the cents far
 * inside int64_t. */
int pay_money_parse(const char *s, int64_t *cents)
{
	int64_t units = 0, frac = 0;
	size_t i = 0;
	if (s == NULL)
		return -1;
	for (; s[i] >= '0' && s[i] <= '9'; i++) {
		if (i == 10)
			return -1;
		units = units * 10 + (s[i] - '0');
	}
	if (i == 0)
		return -1;
	if (s[i] == '.') {
		size_t d = 0;
		for (i++; s[i] >= '0' && s[i] <= '9'; i++, d++) {
			if (d == 2)
				return -1;
			frac = frac * 10 + (s[i] - '0');
		}
		if (d == 0)
			return -1;
		if (d == 1)
			frac *= 10;
	}
	if (s[i] != '\0')
		return -1;
	*cents = units * 100 + frac;
	return 0;
}

void pay_money_format(char out[PAY_MONEY_TEXT], int64_t cents)
{
	snprintf(out, PAY_MONEY_TEXT, "%" PRId64 ".%02d", cents / 100, (int)(cents % 100));
}

int pay_currency_valid(const char *s)
{
	if (s == NULL || strlen(s) != 3)
		return 0;
	for (size_t i = 0; i < 3; i++) {
		if (s[i] < 'A' || s[i] > 'Z')
			return 0;
	}
	return 1;
}

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
