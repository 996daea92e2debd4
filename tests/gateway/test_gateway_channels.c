/*
 * test_gateway_channels.c - which channel the gateway calls each service
 * over (gw_gateway_opts.channel and channel_for): channel_for is asked
 * once per route and once per service of the table at create, never
 * again; a NULL answer falls back to the default channel; without a
 * default, a service left without a channel fails create with
 * INVALID_ARGUMENT naming it. The calls over those channels are tested end
 * to end by tests/services-split.test.sh (panthera-gateway).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gw_auth.h"
#include "gw_gateway.h"
#include "panthera_routes.h"

#define assert_status(expr, want)                                                     \
	do {                                                                          \
		rpc_status got_ = (expr);                                             \
		if (got_ != (want))                                                   \
			fail_msg("%s: got %s, want %s", #expr, rpc_status_name(got_), \
			         rpc_status_name(want));                              \
	} while (0)

#define MAX_SERVICES 32

/* What channel_for was asked, and what it answers. */
typedef struct picker {
	rpc_channel *ch;                 /* the answer for every service but `refuse` */
	const char *refuse;              /* a service answered NULL; may be NULL */
	size_t calls;                    /* every call */
	size_t by_service[MAX_SERVICES]; /* per service of the table */
	size_t unknown;                  /* names that are no service of the table */
} picker;

static rpc_channel *pick(const char *service, void *arg)
{
	picker *p = arg;
	p->calls++;
	size_t i;
	for (i = 0; i < panthera_routes.n_services; i++)
		if (strcmp(panthera_routes.services[i]->name, service) == 0)
			break;
	if (i < panthera_routes.n_services && i < MAX_SERVICES)
		p->by_service[i]++;
	else
		p->unknown++;
	return p->refuse != NULL && strcmp(service, p->refuse) == 0 ? NULL : p->ch;
}

typedef struct fixture {
	gw_auth *auth;
	rpc_channel *a, *b;
} fixture;

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	gw_auth_opts ao = {.issuer = "panthera"};
	const char *ua = "inproc://test-gateway-channels-a",
	           *ub = "inproc://test-gateway-channels-b";
	if (f == NULL || gw_auth_create(&f->auth, &ao) != RPC_STATUS_OK ||
	    rpc_channel_open(&f->a, &ua, 1, NULL) != RPC_STATUS_OK ||
	    rpc_channel_open(&f->b, &ub, 1, NULL) != RPC_STATUS_OK)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	rpc_channel_close(f->a);
	rpc_channel_close(f->b);
	gw_auth_destroy(f->auth);
	free(f);
	return 0;
}

static gw_gateway_opts opts(fixture *f, rpc_channel *def, picker *p)
{
	return (gw_gateway_opts){.routes = &panthera_routes,
	                         .channel = def,
	                         .channel_for = p != NULL ? pick : NULL,
	                         .channel_for_arg = p,
	                         .auth = f->auth};
}

/* Once per route and once per service, each under its own name. */
static void test_gateway_channel_for_asked_once_per_route(void **state)
{
	fixture *f = *state;
	picker p = {.ch = f->b};
	gw_gateway_opts o = opts(f, NULL, &p);
	gw_gateway *g = NULL;
	char err[256];
	assert_true(panthera_routes.n_services <= MAX_SERVICES);
	assert_status(gw_gateway_create(&g, &o, err, sizeof(err)), RPC_STATUS_OK);
	assert_non_null(g);
	assert_int_equal(p.calls, panthera_routes.n_routes + panthera_routes.n_services);
	assert_int_equal(p.unknown, 0);
	for (size_t i = 0; i < panthera_routes.n_services; i++) {
		size_t routes = 0;
		for (size_t r = 0; r < panthera_routes.n_routes; r++)
			routes += panthera_routes.routes[r].service == panthera_routes.services[i];
		if (p.by_service[i] != routes + 1)
			fail_msg("%s: asked %zu times, want %zu", panthera_routes.services[i]->name,
			         p.by_service[i], routes + 1);
	}
	gw_gateway_destroy(g);
	assert_int_equal(p.calls, panthera_routes.n_routes + panthera_routes.n_services);
}

/* A NULL answer is the default channel. */
static void test_gateway_channel_for_null_is_default(void **state)
{
	fixture *f = *state;
	picker p = {.ch = f->b, .refuse = "panthera.catalog.v1.CatalogService"};
	gw_gateway_opts o = opts(f, f->a, &p);
	gw_gateway *g = NULL;
	assert_status(gw_gateway_create(&g, &o, NULL, 0), RPC_STATUS_OK);
	assert_non_null(g);
	gw_gateway_destroy(g);
	/* and every service on the default alone */
	o = opts(f, f->a, NULL);
	assert_status(gw_gateway_create(&g, &o, NULL, 0), RPC_STATUS_OK);
	gw_gateway_destroy(g);
}

/* No default and a service without a channel: refused, naming it. */
static void test_gateway_channel_missing(void **state)
{
	fixture *f = *state;
	picker p = {.ch = f->b, .refuse = "panthera.reviews.v1.ReviewService"};
	gw_gateway_opts o = opts(f, NULL, &p);
	gw_gateway *g = (gw_gateway *)&p; /* must be reset to NULL */
	char err[256] = "";
	assert_status(gw_gateway_create(&g, &o, err, sizeof(err)), RPC_STATUS_INVALID_ARGUMENT);
	assert_null(g);
	assert_non_null(strstr(err, "panthera.reviews.v1.ReviewService"));

	o = opts(f, NULL, NULL); /* neither a default nor channel_for */
	g = (gw_gateway *)&p;
	assert_status(gw_gateway_create(&g, &o, err, sizeof(err)), RPC_STATUS_INVALID_ARGUMENT);
	assert_null(g);
	assert_non_null(strstr(err, "channel"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_gateway_channel_for_asked_once_per_route),
	    cmocka_unit_test(test_gateway_channel_for_null_is_default),
	    cmocka_unit_test(test_gateway_channel_missing),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
