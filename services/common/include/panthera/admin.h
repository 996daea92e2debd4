/*
 * admin.h - AdminService: the metrics of a process and the replay of
 * parked events, over RPC (proto/panthera/admin/v1/admin.proto).
 *
 * A process creates one admin_service, tells it what to report (its RPC
 * server's per-method counters always; database pools, event consumers and
 * any counters of its own as they are set up) and registers it on its RPC
 * server. GetMetrics then answers every sample in the Prometheus data model;
 * the gateway turns them into /metrics.
 *
 * Thread-safety: additions take a lock and may happen while serving; the
 * pools, consumers and sources given must outlive the admin service.
 */
#ifndef PANTHERA_ADMIN_H
#define PANTHERA_ADMIN_H

#include "panthera/admin/v1/admin.panthera.h"
#include "panthera/db.h"
#include "panthera/events.h"

typedef struct admin_service admin_service;

/* What a metrics source writes into; valid during its call only. */
typedef struct admin_metrics admin_metrics;

/* Append one sample (labels: up to two pairs; NULL keys for none). Copies
 * every string. Out of memory is recorded and the reply fails as a whole. */
void admin_metric(admin_metrics *m, const char *name, int counter, const char *help, double value,
                  const char *k1, const char *v1, const char *k2, const char *v2);

typedef void (*admin_source_fn)(admin_metrics *m, void *arg);

/* `srv` is the server whose per-method counters are reported. */
rpc_status admin_service_create(admin_service **out, rpc_server *srv);
void admin_service_destroy(admin_service *a);

rpc_status admin_add_pool(admin_service *a, const char *service, db_pool *pool);
rpc_status admin_add_consumer(admin_service *a, ev_consumer *c, db_pool *own,
                              const char *own_schema);
rpc_status admin_add_source(admin_service *a, admin_source_fn fn, void *arg);

/* Serve AdminService on `srv` (before it starts). */
rpc_status admin_service_register(rpc_server *srv, admin_service *a);

#endif /* PANTHERA_ADMIN_H */
