/*
 * text.c - UTF-8 and control-character checks of wire text; see text.h.
 */
#include "panthera/text.h"

#include <stdint.h>
#include <string.h>

size_t text_utf8_seq(const char *p)
{
	const unsigned char *u = (const unsigned char *)p;
	unsigned c = u[0];
	size_t len;
	uint32_t cp;
	if (c == 0)
		return 0;
	if (c < 0x80)
		return 1;
	if ((c & 0xe0) == 0xc0) {
		len = 2;
		cp = c & 0x1f;
	} else if ((c & 0xf0) == 0xe0) {
		len = 3;
		cp = c & 0x0f;
	} else if ((c & 0xf8) == 0xf0) {
		len = 4;
		cp = c & 0x07;
	} else {
		return 0; /* a continuation byte, or 0xf8..0xff */
	}
	for (size_t k = 1; k < len; k++) {
		/* the NUL is no continuation byte: a cut sequence stops here */
		if ((u[k] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (u[k] & 0x3f);
	}
	static const uint32_t least[5] = {0, 0, 0x80, 0x800, 0x10000};
	if (cp < least[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
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
