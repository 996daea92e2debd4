/*
 * text.c - the string helpers of the notifications service: a growing
 * buffer for rendering, UTF-8 checks for what comes from the wire, and
 * decimal amounts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "notif_internal.h"

static int buf_reserve(notif_buf *b, size_t more)
{
	if (b->failed)
		return -1;
	if (more > SIZE_MAX / 2 - b->len - 1) {
		b->failed = 1;
		return -1;
	}
	size_t need = b->len + more + 1;
	if (need <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap *= 2;
	char *s = realloc(b->s, cap);
	if (s == NULL) {
		b->failed = 1;
		return -1;
	}
	b->s = s;
	b->cap = cap;
	return 0;
}

void notif_buf_put(notif_buf *b, const char *s, size_t n)
{
	if (buf_reserve(b, n) != 0)
		return;
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

void notif_buf_puts(notif_buf *b, const char *s)
{
	notif_buf_put(b, s, strlen(s));
}

void notif_buf_printf(notif_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->failed = 1;
		return;
	}
	if (buf_reserve(b, (size_t)n) != 0)
		return;
	va_start(ap, fmt);
	vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

/* Length of the UTF-8 sequence at p (1..4), or 0 when there is none. */
static size_t utf8_seq(const unsigned char *p)
{
	unsigned char c = p[0];
	size_t len;
	uint32_t cp;
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
		return 0;
	}
	for (size_t k = 1; k < len; k++) {
		if ((p[k] & 0xc0) != 0x80) /* also stops at the NUL */
			return 0;
		cp = cp << 6 | (p[k] & 0x3f);
	}
	static const uint32_t least[5] = {0, 0, 0x80, 0x800, 0x10000};
	if (cp < least[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

void notif_buf_put_text(notif_buf *b, const char *s, size_t max)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	size_t used = 0;
	while (*p != '\0') {
		size_t n = utf8_seq(p);
		if (n == 0) {
			if (used + 1 > max)
				break;
			notif_buf_put(b, "?", 1);
			p++;
			used++;
			continue;
		}
		if (used + n > max)
			break;
		if (n == 1 && (*p < 0x20 || *p == 0x7f))
			notif_buf_put(b, " ", 1);
		else
			notif_buf_put(b, (const char *)p, n);
		p += n;
		used += n;
	}
}

char *notif_buf_take(notif_buf *b)
{
	if (b->s == NULL && !b->failed)
		notif_buf_put(b, "", 0);
	if (b->failed) {
		notif_buf_free(b);
		return NULL;
	}
	char *s = b->s;
	b->s = NULL;
	b->len = b->cap = 0;
	return s;
}

void notif_buf_free(notif_buf *b)
{
	free(b->s);
	b->s = NULL;
	b->len = b->cap = 0;
}

long notif_utf8_chars(const char *s, size_t max_bytes, int multiline)
{
	if (s == NULL)
		return 0;
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	long chars = 0;
	while (p[i] != '\0') {
		size_t n = utf8_seq(p + i);
		if (n == 0)
			return -1;
		if (n == 1 && (p[i] < 0x20 || p[i] == 0x7f) &&
		    !(multiline && (p[i] == '\n' || p[i] == '\r' || p[i] == '\t')))
			return -1;
		i += n;
		if (i > max_bytes)
			return -1;
		chars++;
	}
	return chars;
}

int notif_parse_money(const char *s, int64_t *cents)
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
