/*
 * buf.c - the plugin's arena and growable output buffers.
 *
 * The arena is a chain of malloc'd blocks, one per allocation: the plugin
 * allocates a few thousand small objects at most, so simplicity wins over
 * packing. Buffers grow by doubling and fail sticky, so an emitter checks
 * one flag at the end instead of every append.
 */
#include "pgen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pgen_arena_block {
	pgen_arena_block *next;
	max_align_t data[];
};

void *pgen_alloc(pgen_arena *a, size_t size)
{
	if (size > SIZE_MAX - sizeof(pgen_arena_block)) {
		a->failed = 1;
		return NULL;
	}
	pgen_arena_block *b = calloc(1, sizeof(*b) + size);
	if (b == NULL) {
		a->failed = 1;
		return NULL;
	}
	b->next = a->head;
	a->head = b;
	return b->data;
}

void *pgen_alloc_array(pgen_arena *a, size_t n, size_t size)
{
	if (size != 0 && n > SIZE_MAX / size) {
		a->failed = 1;
		return NULL;
	}
	return pgen_alloc(a, n * size);
}

char *pgen_strndup(pgen_arena *a, const char *s, size_t n)
{
	char *p = pgen_alloc(a, n + 1);
	if (p != NULL)
		memcpy(p, s, n);
	return p;
}

char *pgen_strdup(pgen_arena *a, const char *s)
{
	return pgen_strndup(a, s, strlen(s));
}

char *pgen_printf(pgen_arena *a, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		a->failed = 1;
		return NULL;
	}
	char *p = pgen_alloc(a, (size_t)n + 1);
	if (p == NULL)
		return NULL;
	va_start(ap, fmt);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return p;
}

void pgen_arena_free(pgen_arena *a)
{
	pgen_arena_block *b = a->head;
	while (b != NULL) {
		pgen_arena_block *next = b->next;
		free(b);
		b = next;
	}
	a->head = NULL;
}

/* Make room for `extra` more bytes plus a terminating NUL. */
static int pgen_buf_reserve(pgen_buf *b, size_t extra)
{
	if (b->failed)
		return -1;
	if (extra >= SIZE_MAX - b->len) {
		b->failed = 1;
		return -1;
	}
	size_t need = b->len + extra + 1;
	if (need <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < need) {
		if (cap > SIZE_MAX / 2) {
			cap = need;
			break;
		}
		cap *= 2;
	}
	char *p = realloc(b->data, cap);
	if (p == NULL) {
		b->failed = 1;
		return -1;
	}
	b->data = p;
	b->cap = cap;
	return 0;
}

void pgen_buf_putn(pgen_buf *b, const char *s, size_t n)
{
	if (pgen_buf_reserve(b, n) != 0)
		return;
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void pgen_buf_puts(pgen_buf *b, const char *s)
{
	pgen_buf_putn(b, s, strlen(s));
}

void pgen_buf_putc(pgen_buf *b, char c)
{
	pgen_buf_putn(b, &c, 1);
}

void pgen_buf_vprintf(pgen_buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0) {
		b->failed = 1;
		return;
	}
	if (pgen_buf_reserve(b, (size_t)n) != 0)
		return;
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
}

void pgen_buf_printf(pgen_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	pgen_buf_vprintf(b, fmt, ap);
	va_end(ap);
}

void pgen_buf_free(pgen_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}
