/*
 * text.c - UTF-8 and control-character checks of wire text; see text.h.
 */
#include "panthera/text.h"

#include <stdint.h>
#include <string.h>

int text_utf8_seq_n(const char *p, size_t avail)
{
	const unsigned char *u = (const unsigned char *)p;
	if (avail == 0)
		return TEXT_UTF8_CUT;
	unsigned c = u[0];
	if (c < 0x80)
		return 1;
	/* Table 3-7 of the Unicode standard: the lead byte gives the length
	 * and the range of the second byte, which is what rules out overlong
	 * forms (E0, F0), surrogates (ED) and code points past U+10FFFF (F4);
	 * C0, C1 and F5..FF lead nothing. */
	int len;
	unsigned lo = 0x80, hi = 0xbf;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else {
		return 0;
	}
	for (int k = 1; k < len; k++) {
		if ((size_t)k >= avail)
			return TEXT_UTF8_CUT;
		if (u[k] < lo || u[k] > hi)
			return 0;
		lo = 0x80;
		hi = 0xbf;
	}
	return len;
}

size_t text_utf8_put(uint32_t cp, char out[4])
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | cp >> 6);
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | cp >> 12);
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | cp >> 18);
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

int text_utf8_valid(const char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		int k = text_utf8_seq_n(s + i, n - i);
		if (k <= 0)
			return 0;
		i += (size_t)k;
	}
	return 1;
}

size_t text_utf8_seq(const char *p)
{
	if (p[0] == '\0')
		return 0;
	/* A NUL is no continuation byte: the decoder stops at it, so 4 is
	 * never read past the string's end. */
	int k = text_utf8_seq_n(p, 4);
	return k > 0 ? (size_t)k : 0;
}

/* 1 when the sequence of `len` bytes at `p` is a control character that
 * `flags` refuses. */
static int refused_control(const unsigned char *p, size_t len, unsigned flags)
{
	if (flags & TEXT_ANY_CONTROL)
		return 0;
	if (len == 1) {
		if (p[0] >= 0x20 && p[0] != 0x7f)
			return 0;
		return !((flags & TEXT_MULTILINE) &&
		         (p[0] == '\t' || p[0] == '\n' || p[0] == '\r'));
	}
	/* C1: U+0080..U+009F, encoded 0xc2 0x80..0x9f */
	return len == 2 && p[0] == 0xc2 && p[1] < 0xa0;
}

long text_chars(const char *s, size_t max_bytes, unsigned flags)
{
	if (s == NULL)
		return 0;
	size_t i = 0;
	long chars = 0;
	while (s[i] != '\0') {
		size_t len = text_utf8_seq(s + i);
		if (len == 0 || refused_control((const unsigned char *)s + i, len, flags))
			return -1;
		if (len > max_bytes - i)
			return -1;
		i += len;
		chars++;
	}
	return chars;
}

int text_valid(const char *s, size_t min_chars, size_t max_chars, unsigned flags)
{
	size_t max_bytes = max_chars <= SIZE_MAX / 4 ? 4 * max_chars : SIZE_MAX;
	long n = text_chars(s, max_bytes, flags);
	return n >= 0 && (size_t)n >= min_chars && (size_t)n <= max_chars;
}

int text_blank(const char *s)
{
	return s == NULL || s[strspn(s, " \t\r\n")] == '\0';
}
