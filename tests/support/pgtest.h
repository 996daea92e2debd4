/*
 * pgtest.h - a private PostgreSQL cluster for one test program: initdb in a
 * fresh temporary folder, its own port and unix socket, removed afterwards
 * (through tools/pg.sh, which also runs it as `postgres` when we are root).
 */
#ifndef PANTHERA_PGTEST_H
#define PANTHERA_PGTEST_H

typedef struct pgtest {
	char dir[256];
	int port;
	char url[512];
} pgtest;

/* Start a cluster; 0 on success, -1 with a message on stderr. */
int pgtest_start(pgtest *t);

/* Stop the server, keep the data (for restart tests). */
int pgtest_stop_server(pgtest *t);

/* Start the server again on the same folder and port. */
int pgtest_start_server(pgtest *t);

/* Stop and remove everything. */
void pgtest_destroy(pgtest *t);

#endif
