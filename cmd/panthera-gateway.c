/*
 * panthera-gateway - the REST gateway alone: API.md over HTTP (or HTTPS
 * with PANTHERA_HTTP_TLS_CERT and PANTHERA_HTTP_TLS_KEY) on
 * PANTHERA_HTTP_ADDR, each route's RPC sent to its service over that
 * service's URL (--catalog-url, --users-url, ...: every service the route
 * table names). It serves no service and opens no database, so it scales
 * as replicas in front of services that run elsewhere.
 *
 * Exit status: 0 after SIGINT or SIGTERM (requests in flight finished),
 * 1 when a needed setting is missing or the gateway cannot start, 2 for a
 * malformed setting.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "gateway_proc.h"
#include "panthera/config.h"
#include "panthera/log.h"

int main(int argc, char **argv)
{
	cfg c;
	char err[256];
	if (cfg_load(&c, argc, argv, err, sizeof(err)) != RPC_STATUS_OK) {
		fprintf(stderr, "%s: %s\n", argv[0], err);
		cfg_free(&c);
		return 2;
	}
	if (c.help) {
		if (c.help == 2)
			cfg_print_markdown(stdout);
		else
			cfg_print_help(stdout, argv[0]);
		cfg_free(&c);
		return 0;
	}
	log_level level;
	if (log_level_parse(cfg_get(&c, "log-level"), &level) == 0)
		log_set_level(level);
	const char *addr = cfg_get(&c, "http-addr");
	if (addr == NULL || addr[0] == '\0' || strcmp(addr, "off") == 0) {
		fprintf(stderr,
		        "%s: the gateway needs an address: give --http-addr (PANTHERA_HTTP_ADDR)\n",
		        argv[0]);
		cfg_free(&c);
		return 1;
	}
	if (gateway_proc_check(&c, 1, err, sizeof(err)) != RPC_STATUS_OK) {
		fprintf(stderr, "%s: %s\n", argv[0], err);
		cfg_free(&c);
		return 1;
	}

	/* SIGINT and SIGTERM are taken by sigwait below, in this thread only:
	 * block them before any other thread starts. */
	sigset_t stop_signals;
	sigemptyset(&stop_signals);
	sigaddset(&stop_signals, SIGINT);
	sigaddset(&stop_signals, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
	signal(SIGPIPE, SIG_IGN);

	int rc = 1;
	gateway_proc http = {0};
	gateway_proc_opts o = {.dial_services = 1, .program = "gateway"};
	if (gateway_proc_start(&http, &c, &o) == RPC_STATUS_OK) {
		int sig = 0;
		sigwait(&stop_signals, &sig);
		log_write(LOG_INFO, NULL, "gateway.stop", "signal %d: draining", sig);
		rc = 0;
	}
	gateway_proc_stop(&http);
	log_write(LOG_INFO, NULL, "gateway.exit", "stopped");
	cfg_free(&c);
	return rc;
}
