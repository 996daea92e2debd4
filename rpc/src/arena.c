/*
 * arena.c - the per-call memory arena; see arena.h.
 */
#include "arena.h"

#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#define RPC_ARENA_ALIGN     alignof(max_align_t)
#define RPC_ARENA_MIN_BLOCK 4096u

struct rpc_arena_block {
	rpc_arena_block *next;
	size_t size; /* usable bytes after the header */
	alignas(max_align_t) unsigned char data[];
};

struct rpc_arena_cleanup {
	rpc_arena_cleanup *next;
	void (*fn)(void *);
	void *arg;
};

static void *rpc_arena_pb_alloc(void *data, size_t size)
{
	return rpc_arena_alloc(data, size);
}

static void rpc_arena_pb_free(void *data, void *ptr)
{
	(void)data; /* freed with the arena */
	(void)ptr;
}

static unsigned char *align_up(unsigned char *p)
{
	uintptr_t v = (uintptr_t)p;
	v = (v + RPC_ARENA_ALIGN - 1) & ~(uintptr_t)(RPC_ARENA_ALIGN - 1);
	return (unsigned char *)v;
}

void rpc_arena_init(rpc_arena *a, void *first, size_t first_size, size_t limit)
{
	memset(a, 0, sizeof(*a));
	a->limit = limit;
	a->next_block = RPC_ARENA_MIN_BLOCK;
	if (first != NULL && first_size > 0) {
		a->inline_start = first;
		a->inline_size = first_size;
		a->pos = align_up(first);
		a->end = (unsigned char *)first + first_size;
		if (a->pos > a->end)
			a->pos = a->end;
	}
	a->pb.alloc = rpc_arena_pb_alloc;
	a->pb.free = rpc_arena_pb_free;
	a->pb.allocator_data = a;
}

void *rpc_arena_alloc(rpc_arena *a, size_t size)
{
	if (size == 0)
		size = 1;
	if (size > SIZE_MAX - RPC_ARENA_ALIGN) {
		a->exhausted = 1;
		return NULL;
	}
	size_t rounded = (size + RPC_ARENA_ALIGN - 1) & ~(size_t)(RPC_ARENA_ALIGN - 1);
	if (a->pos != NULL && (size_t)(a->end - a->pos) >= rounded) {
		void *p = a->pos;
		a->pos += rounded;
		return p;
	}
	/* A new block: at least the request, at least double the last one. */
	size_t want = a->next_block > rounded ? a->next_block : rounded;
	if (want > SIZE_MAX - sizeof(rpc_arena_block)) {
		a->exhausted = 1;
		return NULL;
	}
	size_t total = sizeof(rpc_arena_block) + want;
	if (a->limit != 0 && (a->used > a->limit || total > a->limit - a->used)) {
		/* Try the smallest block that fits before giving up. */
		total = sizeof(rpc_arena_block) + rounded;
		if (a->used > a->limit || total > a->limit - a->used) {
			a->exhausted = 1;
			return NULL;
		}
		want = rounded;
	}
	rpc_arena_block *b = malloc(total);
	if (b == NULL) {
		a->exhausted = 1;
		return NULL;
	}
	b->size = want;
	b->next = a->blocks;
	a->blocks = b;
	a->used += total;
	if (a->next_block < SIZE_MAX / 2)
		a->next_block *= 2;
	a->pos = b->data + rounded;
	a->end = b->data + want;
	return b->data;
}

void *rpc_arena_calloc(rpc_arena *a, size_t n, size_t size)
{
	if (size != 0 && n > SIZE_MAX / size)
		return NULL;
	void *p = rpc_arena_alloc(a, n * size);
	if (p != NULL)
		memset(p, 0, n * size);
	return p;
}

char *rpc_arena_strndup(rpc_arena *a, const char *s, size_t n)
{
	if (n == SIZE_MAX)
		return NULL;
	char *p = rpc_arena_alloc(a, n + 1);
	if (p == NULL)
		return NULL;
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

int rpc_arena_on_reset(rpc_arena *a, void (*fn)(void *), void *arg)
{
	rpc_arena_cleanup *c = rpc_arena_alloc(a, sizeof(*c));
	if (c == NULL)
		return -1;
	c->fn = fn;
	c->arg = arg;
	c->next = a->cleanups;
	a->cleanups = c;
	return 0;
}

void rpc_arena_reset(rpc_arena *a)
{
	/* Hooks first: they may read memory of the arena itself. */
	rpc_arena_cleanup *c = a->cleanups;
	a->cleanups = NULL;
	while (c != NULL) {
		rpc_arena_cleanup *next = c->next;
		c->fn(c->arg);
		c = next;
	}
	rpc_arena_block *b = a->blocks;
	while (b != NULL) {
		rpc_arena_block *next = b->next;
		free(b);
		b = next;
	}
	a->blocks = NULL;
	a->used = 0;
	a->exhausted = 0;
	a->next_block = RPC_ARENA_MIN_BLOCK;
	if (a->inline_start != NULL) {
		a->pos = align_up(a->inline_start);
		a->end = a->inline_start + a->inline_size;
		if (a->pos > a->end)
			a->pos = a->end;
	} else {
		a->pos = a->end = NULL;
	}
}

void rpc_arena_destroy(rpc_arena *a)
{
	rpc_arena_reset(a);
}
