/*
 * admin.c - AdminService; see admin.h.
 */
#include "panthera/admin.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define ADMIN_MAX 32

struct admin_service {
	rpc_server *srv;
	pthread_mutex_t lock;
	struct {
		char name[64];
		db_pool *pool;
	} pools[ADMIN_MAX];
	size_t n_pools;
	struct {
		ev_consumer *c;
		db_pool *own;
		char own_schema[64];
	} consumers[ADMIN_MAX];
	size_t n_consumers;
	struct {
		admin_source_fn fn;
		void *arg;
	} sources[ADMIN_MAX];
	size_t n_sources;
};

struct admin_metrics {
	rpc_call *call;
	Panthera__Admin__V1__GetMetricsResponse *resp;
	size_t cap;
	int failed;
};

static char *dup_call(rpc_call *call, const char *s)
{
	size_t n = strlen(s);
	char *p = rpc_call_alloc(call, n + 1);
	if (p != NULL)
		memcpy(p, s, n + 1);
	return p;
}

void admin_metric(admin_metrics *m, const char *name, int counter, const char *help, double value,
                  const char *k1, const char *v1, const char *k2, const char *v2)
{
	if (m->failed)
		return;
	Panthera__Admin__V1__GetMetricsResponse *r = m->resp;
	if (r->n_metrics == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 64;
		Panthera__Admin__V1__Metric **nm = rpc_call_alloc(m->call, cap * sizeof(*nm));
		if (nm == NULL) {
			m->failed = 1;
			return;
		}
		if (r->n_metrics > 0)
			memcpy(nm, r->metrics, r->n_metrics * sizeof(*nm));
		r->metrics = nm;
		m->cap = cap;
	}
	Panthera__Admin__V1__Metric *x = rpc_call_alloc(m->call, sizeof(*x));
	Panthera__Admin__V1__Label **labels = rpc_call_alloc(m->call, 2 * sizeof(*labels));
	if (x == NULL || labels == NULL) {
		m->failed = 1;
		return;
	}
	panthera__admin__v1__metric__init(x);
	x->name = dup_call(m->call, name);
	x->help = dup_call(m->call, help ? help : "");
	x->kind = counter ? PANTHERA__ADMIN__V1__METRIC_KIND__COUNTER
	                  : PANTHERA__ADMIN__V1__METRIC_KIND__GAUGE;
	x->value = value;
	x->labels = labels;
	const char *keys[2] = {k1, k2}, *values[2] = {v1, v2};
	for (int i = 0; i < 2; i++) {
		if (keys[i] == NULL)
			continue;
		Panthera__Admin__V1__Label *l = rpc_call_alloc(m->call, sizeof(*l));
		if (l == NULL) {
			m->failed = 1;
			return;
		}
		panthera__admin__v1__label__init(l);
		l->key = dup_call(m->call, keys[i]);
		l->value = dup_call(m->call, values[i] ? values[i] : "");
		if (l->key == NULL || l->value == NULL) {
			m->failed = 1;
			return;
		}
		labels[x->n_labels++] = l;
	}
	if (x->name == NULL || x->help == NULL) {
		m->failed = 1;
		return;
	}
	r->metrics[r->n_metrics++] = x;
}

rpc_status admin_service_create(admin_service **out, rpc_server *srv)
{
	*out = NULL;
	if (srv == NULL)
		return RPC_STATUS_INVALID_ARGUMENT;
	admin_service *a = calloc(1, sizeof(*a));
	if (a == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	if (pthread_mutex_init(&a->lock, NULL) != 0) {
		free(a);
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	}
	a->srv = srv;
	*out = a;
	return RPC_STATUS_OK;
}

void admin_service_destroy(admin_service *a)
{
	if (a == NULL)
		return;
	pthread_mutex_destroy(&a->lock);
	free(a);
}

rpc_status admin_add_pool(admin_service *a, const char *service, db_pool *pool)
{
	if (a == NULL || service == NULL || pool == NULL || strlen(service) >= 64)
		return RPC_STATUS_INVALID_ARGUMENT;
	rpc_status st = RPC_STATUS_RESOURCE_EXHAUSTED;
	pthread_mutex_lock(&a->lock);
	if (a->n_pools < ADMIN_MAX) {
		strcpy(a->pools[a->n_pools].name, service);
		a->pools[a->n_pools++].pool = pool;
		st = RPC_STATUS_OK;
	}
	pthread_mutex_unlock(&a->lock);
	return st;
}

rpc_status admin_add_consumer(admin_service *a, ev_consumer *c, db_pool *own,
                              const char *own_schema)
{
	if (a == NULL || c == NULL || own == NULL || !db_identifier_valid(own_schema))
		return RPC_STATUS_INVALID_ARGUMENT;
	rpc_status st = RPC_STATUS_RESOURCE_EXHAUSTED;
	pthread_mutex_lock(&a->lock);
	if (a->n_consumers < ADMIN_MAX) {
		a->consumers[a->n_consumers].c = c;
		a->consumers[a->n_consumers].own = own;
		strcpy(a->consumers[a->n_consumers++].own_schema, own_schema);
		st = RPC_STATUS_OK;
	}
	pthread_mutex_unlock(&a->lock);
	return st;
}

rpc_status admin_add_source(admin_service *a, admin_source_fn fn, void *arg)
{
	if (a == NULL || fn == NULL)
		return RPC_STATUS_INVALID_ARGUMENT;
	rpc_status st = RPC_STATUS_RESOURCE_EXHAUSTED;
	pthread_mutex_lock(&a->lock);
	if (a->n_sources < ADMIN_MAX) {
		a->sources[a->n_sources].fn = fn;
		a->sources[a->n_sources++].arg = arg;
		st = RPC_STATUS_OK;
	}
	pthread_mutex_unlock(&a->lock);
	return st;
}

static void rpc_counter(const char *method, rpc_status status, uint64_t calls, uint64_t total_us,
                        void *arg)
{
	admin_metrics *m = arg;
	const char *st = rpc_status_name(status);
	admin_metric(m, "panthera_rpc_server_calls_total", 1,
	             "RPC calls served, by method and final status.", (double)calls, "method",
	             method[0] ? method : "unknown", "status", st);
	admin_metric(m, "panthera_rpc_server_call_seconds_total", 1,
	             "Time spent handling RPC calls, by method and final status.",
	             (double)total_us / 1e6, "method", method[0] ? method : "unknown", "status",
	             st);
}

static rpc_status get_metrics(rpc_call *call, const Panthera__Admin__V1__GetMetricsRequest *req,
                              Panthera__Admin__V1__GetMetricsResponse *resp, void *user)
{
	(void)req;
	admin_service *a = user;
	admin_metrics m = {.call = call, .resp = resp};
	rpc_server_metrics(a->srv, rpc_counter, &m);
	pthread_mutex_lock(&a->lock);
	for (size_t i = 0; i < a->n_pools; i++) {
		unsigned size, used;
		db_pool_stats(a->pools[i].pool, &size, &used);
		admin_metric(&m, "panthera_db_pool_connections", 0,
		             "Connections a service's pool may hold.", size, "service",
		             a->pools[i].name, NULL, NULL);
		admin_metric(&m, "panthera_db_pool_in_use", 0,
		             "Connections of a service's pool taken now.", used, "service",
		             a->pools[i].name, NULL, NULL);
	}
	for (size_t i = 0; i < a->n_consumers; i++) {
		long backlog = 0, parked = 0;
		const char *name = ev_consumer_name(a->consumers[i].c);
		if (ev_consumer_backlog(a->consumers[i].c, &backlog) == RPC_STATUS_OK)
			admin_metric(&m, "panthera_events_backlog", 0,
			             "Events waiting for a consumer.", (double)backlog, "consumer",
			             name, NULL, NULL);
		if (ev_dead_letter_count(a->consumers[i].own, a->consumers[i].own_schema, name,
		                         &parked) == RPC_STATUS_OK)
			admin_metric(&m, "panthera_events_dead_letters", 0,
			             "Events parked after failing too often.", (double)parked,
			             "consumer", name, NULL, NULL);
	}
	for (size_t i = 0; i < a->n_sources; i++)
		a->sources[i].fn(&m, a->sources[i].arg);
	pthread_mutex_unlock(&a->lock);
	return m.failed ? rpc_call_error(call, RPC_STATUS_RESOURCE_EXHAUSTED, "out of memory")
	                : RPC_STATUS_OK;
}

static rpc_status replay_dead_letter(rpc_call *call,
                                     const Panthera__Admin__V1__ReplayDeadLetterRequest *req,
                                     Panthera__Admin__V1__ReplayDeadLetterResponse *resp,
                                     void *user)
{
	(void)resp;
	admin_service *a = user;
	ev_consumer *c = NULL;
	pthread_mutex_lock(&a->lock);
	for (size_t i = 0; i < a->n_consumers && c == NULL; i++) {
		if (req->consumer &&
		    strcmp(ev_consumer_name(a->consumers[i].c), req->consumer) == 0)
			c = a->consumers[i].c;
	}
	pthread_mutex_unlock(&a->lock);
	if (c == NULL)
		return rpc_call_error(call, RPC_STATUS_NOT_FOUND, "no consumer named %s",
		                      req->consumer ? req->consumer : "");
	rpc_status st = ev_replay_dead_letter(c, req->event_id);
	if (st == RPC_STATUS_NOT_FOUND)
		return rpc_call_error(call, st, "no parked event %s for %s", req->event_id,
		                      req->consumer);
	return st == RPC_STATUS_OK
	           ? st
	           : rpc_call_error(call, st, "the replay failed: %s", rpc_status_name(st));
}

static const panthera_admin_v1_admin_service_handlers admin_handlers = {
    .get_metrics = get_metrics,
    .replay_dead_letter = replay_dead_letter,
};

rpc_status admin_service_register(rpc_server *srv, admin_service *a)
{
	return panthera_admin_v1_admin_service_register(srv, &admin_handlers, a);
}
