/*
 * delivery.c - the delivery queue's worker: claim due notifications, ask
 * UserService for the recipients' addresses (and whether their accounts
 * are still active), hand each email to the sink, record the outcome.
 *
 * No database connection is held while the network is used: the claim is
 * one statement that counts the attempt and leases the rows (their
 * next_attempt_at moves past the time the batch may take), and each outcome
 * is one more statement guarded by the attempt number, so a worker whose
 * lease ran out (and whose rows another worker took) changes nothing. A
 * worker that dies mid-batch leaves rows that come due again when their
 * lease ends: a notification may then be sent twice, never lost.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "notif_internal.h"
#include "panthera/log.h"
#include "panthera/users/v1/users.panthera.h"

#define NOTIF_USERS_TIMEOUT_MS 5000u
#define NOTIF_DB_WAIT_MS       10000u

/* One claimed notification. */
typedef struct claimed {
	char id[37];
	char user_id[37];
	int attempts;
	const char *subject, *body; /* in the claim's PGresult */
	const char *email;          /* in the users reply, or NULL */
	int deactivated;            /* the user's account is DEACTIVATED: send nothing */
} claimed;

/* How long after attempt `attempts` (1, 2, ...) failed to try again. */
static uint64_t retry_delay_ms(const notifications_service *svc, int attempts)
{
	uint64_t d = svc->retry_base_ms ? svc->retry_base_ms : NOTIF_DEFAULT_RETRY_MS;
	for (int i = 1; i < attempts && d < NOTIF_MAX_RETRY_MS; i++)
		d *= 2;
	return d < NOTIF_MAX_RETRY_MS ? d : NOTIF_MAX_RETRY_MS;
}

static unsigned max_attempts(const notifications_service *svc)
{
	return svc->max_attempts ? svc->max_attempts : NOTIF_DEFAULT_ATTEMPTS;
}

/* Run one outcome statement on a connection of its own. */
typedef enum outcome { OUT_SENT, OUT_RETRY, OUT_GIVE_UP, OUT_SKIP, OUT_PUT_BACK } outcome;

static rpc_status record_outcome(notifications_service *svc, const claimed *n, outcome o,
                                 const char *error)
{
	db_conn *c;
	rpc_status st = db_acquire(svc->pool, NOTIF_DB_WAIT_MS, &c);
	if (st != RPC_STATUS_OK)
		return st;
	switch (o) {
	case OUT_SENT:
		st = notif_store_sent(c, n->id, n->attempts);
		break;
	case OUT_RETRY:
		st = notif_store_retry(c, n->id, n->attempts, retry_delay_ms(svc, n->attempts),
		                       error);
		break;
	case OUT_GIVE_UP:
		st = notif_store_give_up(c, n->id, n->attempts, error);
		break;
	case OUT_SKIP:
		st = notif_store_skip(c, n->id, n->attempts, error);
		break;
	case OUT_PUT_BACK:
		st = notif_store_put_back(c, n->id, n->attempts);
		break;
	}
	db_release(svc->pool, c);
	return st;
}

/* A failed attempt: again later, or given up after the last attempt (or
 * at once when `permanent`). */
static rpc_status failed(notifications_service *svc, const claimed *n, int permanent,
                         const char *error)
{
	if (permanent || (unsigned)n->attempts >= max_attempts(svc)) {
		log_write(LOG_ERROR, NULL, "notifications.give_up",
		          "notification %s to user %s given up after %d attempt(s): %s", n->id,
		          n->user_id, n->attempts, error);
		return record_outcome(svc, n, OUT_GIVE_UP, error);
	}
	log_write(LOG_WARN, NULL, "notifications.retry",
	          "notification %s to user %s: attempt %d of %u failed (%s); again in %" PRIu64
	          " ms",
	          n->id, n->user_id, n->attempts, max_attempts(svc), error,
	          retry_delay_ms(svc, n->attempts));
	return record_outcome(svc, n, OUT_RETRY, error);
}

/*
 * Fill each claimed notification's email, and whether its user's account
 * is deactivated, from UserService.BatchGetUsers. On a failed call, *error
 * says why and every notification is a transient failure; an id missing
 * from the reply leaves its email NULL. `*reply` is the reply holding the
 * addresses, to free after use.
 */
static rpc_status lookup_emails(notifications_service *svc, claimed *list, size_t n,
                                rpc_reply **reply, char *error, size_t errlen)
{
	*reply = NULL;
	if (svc->users == NULL) {
		snprintf(error, errlen, "no UserService to ask for the recipient's address");
		return RPC_STATUS_FAILED_PRECONDITION;
	}
	char *ids[NOTIF_BATCH];
	size_t n_ids = 0;
	for (size_t i = 0; i < n; i++) {
		size_t k = 0;
		while (k < n_ids && strcasecmp(ids[k], list[i].user_id) != 0)
			k++;
		if (k == n_ids)
			ids[n_ids++] = list[i].user_id;
	}
	Panthera__Users__V1__BatchGetUsersRequest req =
	    PANTHERA__USERS__V1__BATCH_GET_USERS_REQUEST__INIT;
	req.user_ids = ids;
	req.n_user_ids = n_ids;
	rpc_call_opts opts = {.timeout_ms = NOTIF_USERS_TIMEOUT_MS, .max_retries = 1};
	const Panthera__Users__V1__BatchGetUsersResponse *resp = NULL;
	rpc_status st =
	    panthera_users_v1_user_service_batch_get_users(svc->users, &req, &opts, &resp, reply);
	if (st != RPC_STATUS_OK) {
		snprintf(error, errlen, "UserService.BatchGetUsers: %s: %s", rpc_status_name(st),
		         rpc_reply_message(*reply));
		return st;
	}
	for (size_t u = 0; u < resp->n_users; u++) {
		const Panthera__Users__V1__User *user = resp->users[u];
		if (user == NULL || user->id == NULL)
			continue;
		for (size_t i = 0; i < n; i++) {
			if (strcasecmp(user->id, list[i].user_id) == 0) {
				list[i].email = user->email;
				list[i].deactivated =
				    user->status == PANTHERA__USERS__V1__USER_STATUS__DEACTIVATED;
			}
		}
	}
	return RPC_STATUS_OK;
}

static rpc_status claim(notifications_service *svc, PGresult **rows)
{
	db_conn *c;
	rpc_status st = db_acquire(svc->pool, NOTIF_DB_WAIT_MS, &c);
	if (st != RPC_STATUS_OK)
		return st;
	/* the lease: every send of the batch at its longest, and a minute */
	uint32_t t = svc->smtp_timeout_ms ? svc->smtp_timeout_ms : NOTIF_DEFAULT_TIMEOUT_MS;
	uint64_t lease = (uint64_t)NOTIF_BATCH * 4 * t + NOTIF_USERS_TIMEOUT_MS * 2 + 60000;
	st = notif_store_claim(c, NOTIF_BATCH, lease, rows);
	db_release(svc->pool, c);
	return st;
}

rpc_status notif_deliver_batch(notifications_service *svc, unsigned *handled)
{
	struct notifications_private *p = svc->priv;
	PGresult *rows = NULL;
	rpc_reply *users = NULL;
	unsigned done = 0;
	rpc_status st = claim(svc, &rows);
	if (st != RPC_STATUS_OK)
		goto out;
	size_t n = (size_t)PQntuples(rows);
	if (n == 0)
		goto out;
	claimed list[NOTIF_BATCH];
	if (n > NOTIF_BATCH)
		n = NOTIF_BATCH; /* cannot happen: LIMIT */
	for (size_t i = 0; i < n; i++) {
		claimed *c = &list[i];
		snprintf(c->id, sizeof(c->id), "%s", PQgetvalue(rows, (int)i, NOTIF_CLAIM_ID));
		snprintf(c->user_id, sizeof(c->user_id), "%s",
		         PQgetvalue(rows, (int)i, NOTIF_CLAIM_USER));
		c->attempts = atoi(PQgetvalue(rows, (int)i, NOTIF_CLAIM_ATTEMPTS));
		c->subject = PQgetvalue(rows, (int)i, NOTIF_CLAIM_SUBJECT);
		c->body = PQgetvalue(rows, (int)i, NOTIF_CLAIM_BODY);
		c->email = NULL;
		c->deactivated = 0;
	}
	char error[512];
	rpc_status lst = lookup_emails(svc, list, n, &users, error, sizeof(error));
	for (size_t i = 0; i < n; i++) {
		claimed *c = &list[i];
		rpc_status ost;
		if (atomic_load(&p->stopping)) {
			ost = record_outcome(svc, c, OUT_PUT_BACK, NULL);
		} else if (lst != RPC_STATUS_OK) {
			ost = failed(svc, c, 0, error);
			done++;
		} else if (c->email == NULL) {
			ost = failed(svc, c, 1, "the recipient is not a known user");
			done++;
		} else if (c->deactivated) {
			/* a deleted account gets no more email (API.md: DELETE
			 * /v1/users/{userId} deactivates); its history stays */
			log_write(LOG_INFO, NULL, "notifications.skipped",
			          "notification %s to user %s not sent: the account is deactivated",
			          c->id, c->user_id);
			ost = record_outcome(svc, c, OUT_SKIP,
			                     "the recipient's account is deactivated");
			done++;
		} else {
			notifications_mail m = {.to = c->email,
			                        .subject = c->subject,
			                        .body = c->body,
			                        .cancel = &p->stopping};
			char why[512];
			rpc_status sst = notifications_sink_send(p->sink, &m, why, sizeof(why));
			if (sst == RPC_STATUS_OK) {
				log_write(LOG_INFO, NULL, "notifications.sent",
				          "notification %s sent to user %s (attempt %d)", c->id,
				          c->user_id, c->attempts);
				ost = record_outcome(svc, c, OUT_SENT, NULL);
				done++;
			} else if (sst == RPC_STATUS_CANCELLED) {
				ost = record_outcome(svc, c, OUT_PUT_BACK, NULL);
			} else {
				int permanent = sst == RPC_STATUS_FAILED_PRECONDITION ||
				                sst == RPC_STATUS_INVALID_ARGUMENT;
				ost = failed(svc, c, permanent, why);
				done++;
			}
		}
		if (ost != RPC_STATUS_OK && st == RPC_STATUS_OK)
			st = ost; /* its lease brings it back */
	}
out:
	rpc_reply_free(users);
	PQclear(rows);
	if (handled != NULL)
		*handled = done;
	return st;
}
