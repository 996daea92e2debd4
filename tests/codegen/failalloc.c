/*
 * failalloc.c - an LD_PRELOAD shim that makes the Nth heap allocation of a
 * process fail, for allocation-failure tests of whole programs.
 *
 * FAILALLOC_AT=N makes allocation number N (malloc, calloc or realloc,
 * counted from 1) return NULL with errno ENOMEM; the others go through.
 * Without the variable nothing fails. FAILALLOC_COUNT=path writes the total
 * number of allocations to that file at exit, so a test knows how far to go.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);

static unsigned long failalloc_count;
static long failalloc_at = -1; /* -1: not read yet, 0: never fail */

static int failalloc_should_fail(void)
{
	if (failalloc_at < 0) {
		const char *v = getenv("FAILALLOC_AT");
		failalloc_at = v ? strtol(v, NULL, 10) : 0;
	}
	failalloc_count++;
	if (failalloc_at > 0 && failalloc_count == (unsigned long)failalloc_at) {
		errno = ENOMEM;
		return 1;
	}
	return 0;
}

void *malloc(size_t size)
{
	return failalloc_should_fail() ? NULL : __libc_malloc(size);
}

void *calloc(size_t n, size_t size)
{
	return failalloc_should_fail() ? NULL : __libc_calloc(n, size);
}

void *realloc(void *p, size_t size)
{
	return failalloc_should_fail() ? NULL : __libc_realloc(p, size);
}

__attribute__((destructor)) static void failalloc_report(void)
{
	const char *path = getenv("FAILALLOC_COUNT");
	if (path == NULL)
		return;
	FILE *f = fopen(path, "w");
	if (f != NULL) {
		fprintf(f, "%lu\n", failalloc_count);
		fclose(f);
	}
}
