/*
 * text.c - the string helpers of the notifications service: a growing
 * buffer for rendering (text from the wire made safe with panthera/text.h)
 * and decimal amounts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "notif_internal.h"
#include "panthera/text.h"

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

void notif_buf_put_text(notif_buf *b, const char *s, size_t max)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	size_t used = 0;
	while (*p != '\0') {
		size_t n = text_utf8_seq((const char *)p);
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
