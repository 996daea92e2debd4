/*
 * config.h - the configuration of Panthera's processes, from one table.
 *
 * Every setting has a flag (--db-url=URL or --db-url URL) and an environment
 * variable (PANTHERA_DB_URL); a flag wins over the variable, the variable
 * over the default. The table (config.c) is the only list: --help and the
 * operations reference (cfg_print_markdown) are printed from it, so they
 * cannot drift from what the code reads.
 *
 * Values are read once at start (cfg_load) and are then constant; reading
 * them is thread-safe.
 */
#ifndef PANTHERA_CONFIG_H
#define PANTHERA_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#include "panthera/rpc_status.h"

typedef enum cfg_type { CFG_STRING, CFG_INT, CFG_BOOL } cfg_type;

typedef struct cfg_var {
	const char *flag; /* "db-url" */
	const char *env;  /* "PANTHERA_DB_URL" */
	cfg_type type;
	const char *def; /* default, NULL for none */
	long min, max;   /* CFG_INT bounds */
	int secret;      /* never printed (passwords, keys) */
	const char *help;
} cfg_var;

/* The table, and its length. */
extern const cfg_var cfg_vars[];
extern const size_t cfg_n_vars;

typedef struct cfg {
	char **values; /* one per table entry; NULL when unset with no default */
	int help;      /* 1: --help was given; 2: --help-markdown */
} cfg;

/*
 * Read flags from argv[1..argc) and variables from the environment.
 * INVALID_ARGUMENT, with the reason in err[0..errlen), for an unknown flag,
 * a missing value, an integer out of bounds or a bad boolean (true/false,
 * 1/0, yes/no, on/off). `out` must be freed with cfg_free() on any return.
 */
rpc_status cfg_load(cfg *out, int argc, char **argv, char *err, size_t errlen);

/* The value of flag `name` ("db-url"), or NULL. */
const char *cfg_get(const cfg *c, const char *name);
/* As an integer (its default on a name unknown or unset: 0). */
long cfg_get_int(const cfg *c, const char *name);
/* As a boolean. */
int cfg_get_bool(const cfg *c, const char *name);

/*
 * The database URL of a service (`service` upper case, "CATALOG"):
 * PANTHERA_CATALOG_DB_URL when set, else the db-url setting, else NULL.
 * Database-per-service is thus a configuration choice.
 */
const char *cfg_db_url(const cfg *c, const char *service);

/* The --help text: usage, then every setting with flag, variable, default. */
void cfg_print_help(FILE *f, const char *program);

/* The same as a Markdown table, for docs/operations.md. */
void cfg_print_markdown(FILE *f);

void cfg_free(cfg *c);

#endif /* PANTHERA_CONFIG_H */
