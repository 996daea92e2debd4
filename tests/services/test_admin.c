/*
 * test_admin.c - AdminService over RPC on a real PostgreSQL: the metrics of
 * the RPC server, a database pool and an event consumer (backlog and dead
 * letters), and the replay of a parked event.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../support/pgtest.h"
#include "../support/svctest.h"
#include "grpc/health/v1/health.panthera.h"
#include "panthera/admin.h"
#include "panthera/log.h"

static int fail_bad = 1;

static rpc_status handler(db_conn *c, const ev_event *ev, void *arg)
{
	(void)c;
	(void)arg;
	return fail_bad && ev->payload_len == 3 && memcmp(ev->payload, "bad", 3) == 0
	           ? RPC_STATUS_INTERNAL
	           : RPC_STATUS_OK;
}

static void publish(db_pool *p, const char *payload)
{
	db_conn *c;
	assert_status(db_acquire(p, 2000, &c), RPC_STATUS_OK);
	assert_status(db_exec(c, NULL, "BEGIN", 0, NULL, NULL), RPC_STATUS_OK);
	assert_status(ev_publish(c, "orders", "test.v1.Thing", "", (const uint8_t *)payload,
	                         strlen(payload), NULL),
	              RPC_STATUS_OK);
	assert_status(db_exec(c, NULL, "COMMIT", 0, NULL, NULL), RPC_STATUS_OK);
	db_release(p, c);
}

/* The value of the sample `name` whose labels include k=v; -1 when absent. */
static double sample(rpc_channel *ch, const char *name, const char *k, const char *v)
{
	Panthera__Admin__V1__GetMetricsRequest req = PANTHERA__ADMIN__V1__GET_METRICS_REQUEST__INIT;
	const Panthera__Admin__V1__GetMetricsResponse *resp;
	rpc_reply *reply;
	assert_status(panthera_admin_v1_admin_service_get_metrics(ch, &req, NULL, &resp, &reply),
	              RPC_STATUS_OK);
	double value = -1;
	for (size_t i = 0; i < resp->n_metrics; i++) {
		const Panthera__Admin__V1__Metric *m = resp->metrics[i];
		if (strcmp(m->name, name) != 0)
			continue;
		for (size_t l = 0; l < m->n_labels; l++) {
			if (strcmp(m->labels[l]->key, k) == 0 &&
			    strcmp(m->labels[l]->value, v) == 0)
				value = m->value;
		}
	}
	rpc_reply_free(reply);
	return value;
}

static void test_metrics_and_replay(void **state)
{
	(void)state;
	pgtest pg;
	log_set_level(LOG_ERROR);
	assert_int_equal(pgtest_start(&pg), 0);
	db_pool *pool;
	db_pool_opts o = {.url = pg.url, .size = 4};
	assert_status(db_pool_open(&pool, &o), RPC_STATUS_OK);
	assert_status(ev_outbox_setup(pool, "orders"), RPC_STATUS_OK);
	ev_consumer *consumer;
	ev_consumer_opts co = {.name = "sink.admin",
	                       .source = pool,
	                       .source_schema = "orders",
	                       .own = pool,
	                       .own_schema = "sink",
	                       .handler = handler,
	                       .max_attempts = 1,
	                       .backoff_ms = 1};
	assert_status(ev_consumer_open(&consumer, &co), RPC_STATUS_OK);

	rpc_server *srv;
	admin_service *admin;
	const char *url = "inproc://admin-test";
	assert_status(rpc_server_create(&srv, NULL), RPC_STATUS_OK);
	assert_status(admin_service_create(&admin, srv), RPC_STATUS_OK);
	assert_status(admin_service_register(srv, admin), RPC_STATUS_OK);
	assert_status(admin_add_pool(admin, "orders", pool), RPC_STATUS_OK);
	assert_status(admin_add_consumer(admin, consumer, pool, "sink"), RPC_STATUS_OK);
	rpc_channel *ch;
	assert_status(svctest_start(srv, url, &ch), RPC_STATUS_OK);

	/* the RPC counters */
	Grpc__Health__V1__HealthCheckRequest h = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
	rpc_reply *reply;
	assert_status(grpc_health_v1_health_check(ch, &h, NULL, NULL, &reply), RPC_STATUS_OK);
	rpc_reply_free(reply);
	assert_true(sample(ch, "panthera_rpc_server_calls_total", "method",
	                   "/grpc.health.v1.Health/Check") == 1.0);
	assert_true(sample(ch, "panthera_db_pool_connections", "service", "orders") == 4.0);
	assert_true(sample(ch, "panthera_db_pool_in_use", "service", "orders") >= 0.0);

	/* the event backlog, then a parked event */
	publish(pool, "bad");
	publish(pool, "good");
	assert_true(sample(ch, "panthera_events_backlog", "consumer", "sink.admin") == 2.0);
	unsigned n;
	assert_status(ev_consume_once(consumer, &n), RPC_STATUS_OK);
	assert_true(sample(ch, "panthera_events_backlog", "consumer", "sink.admin") == 0.0);
	assert_true(sample(ch, "panthera_events_dead_letters", "consumer", "sink.admin") == 1.0);

	/* replay over RPC, once the cause is fixed */
	db_conn *c;
	PGresult *r;
	assert_status(db_acquire(pool, 2000, &c), RPC_STATUS_OK);
	assert_status(db_exec(c, NULL, "SELECT event_id::text FROM sink.dead_letters", 0, NULL, &r),
	              RPC_STATUS_OK);
	char id[64];
	snprintf(id, sizeof(id), "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	db_release(pool, c);
	Panthera__Admin__V1__ReplayDeadLetterRequest rq =
	    PANTHERA__ADMIN__V1__REPLAY_DEAD_LETTER_REQUEST__INIT;
	rq.consumer = "sink.admin";
	rq.event_id = id;
	assert_status(
	    panthera_admin_v1_admin_service_replay_dead_letter(ch, &rq, NULL, NULL, &reply),
	    RPC_STATUS_INTERNAL); /* still failing: stays parked */
	rpc_reply_free(reply);
	fail_bad = 0;
	assert_status(
	    panthera_admin_v1_admin_service_replay_dead_letter(ch, &rq, NULL, NULL, &reply),
	    RPC_STATUS_OK);
	rpc_reply_free(reply);
	assert_true(sample(ch, "panthera_events_dead_letters", "consumer", "sink.admin") == 0.0);
	rq.consumer = "nobody";
	assert_status(
	    panthera_admin_v1_admin_service_replay_dead_letter(ch, &rq, NULL, NULL, &reply),
	    RPC_STATUS_NOT_FOUND);
	rpc_reply_free(reply);

	rpc_channel_close(ch);
	rpc_server_destroy(srv);
	admin_service_destroy(admin);
	ev_consumer_close(consumer);
	db_pool_close(pool);
	pgtest_destroy(&pg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_metrics_and_replay),
	};
	return cmocka_run_group_tests_name("admin", tests, NULL, NULL);
}
