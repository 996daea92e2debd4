/*
 * pgtest.c - see pgtest.h.
 */
#define _GNU_SOURCE
#include "pgtest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef SRC_DIR
#error "SRC_DIR must name the source tree"
#endif

static int run_pg(pgtest *t, const char *verb, char *out, size_t cap)
{
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "%s/tools/pg.sh %s %s %d 2>&1", SRC_DIR, verb, t->dir, t->port);
	FILE *p = popen(cmd, "r");
	if (p == NULL)
		return -1;
	char buf[4096] = "";
	size_t n = fread(buf, 1, sizeof(buf) - 1, p);
	buf[n] = '\0';
	int rc = pclose(p);
	if (rc != 0) {
		fprintf(stderr, "pgtest: %s failed: %s\n", cmd, buf);
		return -1;
	}
	if (out != NULL) {
		buf[strcspn(buf, "\n")] = '\0';
		snprintf(out, cap, "%s", buf);
	}
	return 0;
}

int pgtest_start(pgtest *t)
{
	memset(t, 0, sizeof(*t));
	snprintf(t->dir, sizeof(t->dir), "/tmp/panthera-pg-XXXXXX");
	if (mkdtemp(t->dir) == NULL)
		return -1;
	/* a port taken meanwhile (another test, an outgoing connection) fails
	 * the start: try a few others */
	for (int i = 0; i < 5; i++) {
		t->port = 40000 + (int)((getpid() + (pid_t)i * 1777) % 9000);
		if (run_pg(t, "start", t->url, sizeof(t->url)) == 0)
			return 0;
	}
	return -1;
}

int pgtest_stop_server(pgtest *t)
{
	return run_pg(t, "stop", NULL, 0);
}

int pgtest_start_server(pgtest *t)
{
	return run_pg(t, "start", NULL, 0);
}

void pgtest_destroy(pgtest *t)
{
	if (t->dir[0] == '\0')
		return;
	run_pg(t, "stop", NULL, 0);
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "pgtest: could not remove %s\n", t->dir);
	t->dir[0] = '\0';
}
