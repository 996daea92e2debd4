/*
 * users.c - UserService over RPC: accounts and their addresses, with the
 * access rules of API.md applied to the caller the gateway names in
 * metadata (auth.h): an owner check that fails answers NOT_FOUND, exactly
 * as for an account that does not exist; admin-only fields and ListUsers
 * answer PERMISSION_DENIED to others.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth_check.h"
#include "auth_internal.h"
#include "auth_store.h"
#include "panthera/ids.h"
#include "panthera/log.h"

#define USERS_MAX_PAGE_SIZE 100
#define USERS_DEFAULT_PAGE  20
#define USERS_MAX_BATCH     1000
#define USERS_MAX_ADDRESSES 100

static rpc_status no_caller(rpc_call *call)
{
	return rpc_call_error(call, RPC_STATUS_UNAUTHENTICATED, "no caller identity");
}

static rpc_status user_not_found(rpc_call *call, const char *id)
{
	rpc_call_set_error_reason(call, "USER_NOT_FOUND", NULL);
	return rpc_call_error(call, RPC_STATUS_NOT_FOUND, "user %s not found", id);
}

/*
 * The checks every per-user method starts with: a UUID, a caller, and a
 * caller allowed to see that user (else NOT_FOUND, as if it did not exist).
 * OK when the handler may go on.
 */
static rpc_status may_touch(rpc_call *call, const char *user_id, caller *who)
{
	if (!id_is_uuid(user_id))
		return auth_bad_field(call, "user_id", "must be a UUID");
	caller_get(call, who);
	if (who->id == NULL)
		return no_caller(call);
	if (!caller_may_see(who, user_id))
		return user_not_found(call, user_id);
	return RPC_STATUS_OK;
}

/* ---- one user ---- */

typedef struct user_op {
	rpc_call *call;
	const char *id;
	Panthera__Users__V1__User *resp;
	/* UpdateUser */
	const auth_user_change *change;
	/* DeleteUser */
	int deactivate;
	int deactivated; /* the account went from ACTIVE to DEACTIVATED */
} user_op;

static rpc_status tx_get_user(db_conn *c, void *arg)
{
	user_op *op = arg;
	PGresult *u;
	rpc_status st = auth_store_get_user(c, op->id, 0, &u);
	if (st != RPC_STATUS_OK)
		return st;
	st = auth_user_fill(op->call, op->resp, u, 0);
	PQclear(u);
	return st;
}

static rpc_status run_get_user(rpc_call *call, auth_service *svc, const char *id,
                               Panthera__Users__V1__User *resp)
{
	user_op op = {.call = call, .id = id, .resp = resp};
	rpc_status st = db_transaction(svc->pool, 0, auth_db_wait_ms(call), tx_get_user, &op);
	if (st == RPC_STATUS_NOT_FOUND)
		return user_not_found(call, id);
	return st == RPC_STATUS_OK ? st : auth_db_failed(call, st);
}

static rpc_status get_current_user(rpc_call *call,
                                   const Panthera__Users__V1__GetCurrentUserRequest *req,
                                   Panthera__Users__V1__User *resp, void *user)
{
	(void)req;
	caller who;
	caller_get(call, &who);
	if (who.id == NULL)
		return no_caller(call);
	return run_get_user(call, user, who.id, resp);
}

static rpc_status get_user(rpc_call *call, const Panthera__Users__V1__GetUserRequest *req,
                           Panthera__Users__V1__User *resp, void *user)
{
	caller who;
	rpc_status st = may_touch(call, req->user_id, &who);
	return st == RPC_STATUS_OK ? run_get_user(call, user, req->user_id, resp) : st;
}

/* Lock the account, apply the change (UpdateUser) or the deactivation
 * (DeleteUser); an ACTIVE account made DEACTIVATED loses its sessions and
 * publishes UserDeactivated, in the same transaction. */
static rpc_status tx_change_user(db_conn *c, void *arg)
{
	user_op *op = arg;
	op->deactivated = 0;
	PGresult *u;
	rpc_status st = auth_store_get_user(c, op->id, 1, &u);
	if (st != RPC_STATUS_OK)
		return st;
	int was_active = strcmp(PQgetvalue(u, 0, AUTH_USER_STATUS), "ACTIVE") == 0;
	auth_user_change deact = {.set_status = 1, .status = "DEACTIVATED"};
	const auth_user_change *ch = op->deactivate ? &deact : op->change;
	if (ch->set_first_name || ch->set_last_name || ch->set_roles || ch->set_status) {
		PQclear(u);
		if ((st = auth_store_update_user(c, op->id, ch, &u)) != RPC_STATUS_OK)
			return st;
	}
	int now_active = strcmp(PQgetvalue(u, 0, AUTH_USER_STATUS), "ACTIVE") == 0;
	if (!now_active) /* revoked again on a repeat: harmless, and closes any gap */
		st = auth_store_revoke_user(c, op->id);
	if (st == RPC_STATUS_OK && was_active && !now_active) {
		op->deactivated = 1;
		st = auth_publish_deactivated(c, op->id);
	}
	if (st == RPC_STATUS_OK && op->resp != NULL)
		st = auth_user_fill(op->call, op->resp, u, 0);
	PQclear(u);
	return st;
}

static rpc_status run_change(rpc_call *call, auth_service *svc, user_op *op)
{
	rpc_status st = db_transaction(svc->pool, 0, auth_db_wait_ms(call), tx_change_user, op);
	if (st == RPC_STATUS_NOT_FOUND)
		return user_not_found(call, op->id);
	if (st != RPC_STATUS_OK)
		return auth_db_failed(call, st);
	if (op->deactivated)
		log_write(LOG_INFO, rpc_call_metadata(call, "x-request-id"), "auth.deactivate",
		          "user %s deactivated; sessions revoked", op->id);
	return RPC_STATUS_OK;
}

/* Which fields an UpdateUser names: its update_mask, or without one
 * (AIP-134) every field that is set. */
static rpc_status update_fields(rpc_call *call, const Panthera__Users__V1__UpdateUserRequest *req,
                                auth_user_change *ch)
{
	const Google__Protobuf__FieldMask *m = req->update_mask;
	if (m == NULL || m->n_paths == 0) {
		ch->set_first_name = req->first_name != NULL && req->first_name[0] != '\0';
		ch->set_last_name = req->last_name != NULL && req->last_name[0] != '\0';
		ch->set_roles = req->n_roles > 0;
		ch->set_status =
		    req->status != PANTHERA__USERS__V1__USER_STATUS__USER_STATUS_UNSPECIFIED;
		return RPC_STATUS_OK;
	}
	for (size_t i = 0; i < m->n_paths; i++) {
		const char *p = m->paths[i] ? m->paths[i] : "";
		if (strcmp(p, "first_name") == 0)
			ch->set_first_name = 1;
		else if (strcmp(p, "last_name") == 0)
			ch->set_last_name = 1;
		else if (strcmp(p, "roles") == 0)
			ch->set_roles = 1;
		else if (strcmp(p, "status") == 0)
			ch->set_status = 1;
		else
			return auth_bad_field(
			    call, "update_mask",
			    "may name only first_name, last_name, roles and status");
	}
	return RPC_STATUS_OK;
}

static rpc_status update_user(rpc_call *call, const Panthera__Users__V1__UpdateUserRequest *req,
                              Panthera__Users__V1__User *resp, void *user)
{
	caller who;
	rpc_status st = may_touch(call, req->user_id, &who);
	if (st != RPC_STATUS_OK)
		return st;
	auth_user_change ch = {0};
	if ((st = update_fields(call, req, &ch)) != RPC_STATUS_OK)
		return st;
	if ((ch.set_roles || ch.set_status) && !who.admin) {
		rpc_call_set_error_reason(call, "ADMIN_ONLY_FIELD", NULL);
		return rpc_call_error(call, RPC_STATUS_PERMISSION_DENIED,
		                      "only an admin may change roles or status");
	}
	if (ch.set_first_name) {
		if (!auth_text_ok(req->first_name, 1, AUTH_NAME_MAX))
			return auth_bad_field(call, "first_name", "must be 1 to 100 characters");
		ch.first_name = req->first_name;
	}
	if (ch.set_last_name) {
		if (!auth_text_ok(req->last_name, 1, AUTH_NAME_MAX))
			return auth_bad_field(call, "last_name", "must be 1 to 100 characters");
		ch.last_name = req->last_name;
	}
	if (ch.set_roles) {
		ch.roles = AUTH_ROLE_USER; /* always kept */
		for (size_t i = 0; i < req->n_roles; i++) {
			if (req->roles[i] == PANTHERA__USERS__V1__ROLE__ADMIN)
				ch.roles |= AUTH_ROLE_ADMIN;
			else if (req->roles[i] != PANTHERA__USERS__V1__ROLE__USER)
				return auth_bad_field(call, "roles",
				                      "may hold only USER and ADMIN");
		}
	}
	if (ch.set_status) {
		if (req->status == PANTHERA__USERS__V1__USER_STATUS__ACTIVE)
			ch.status = "ACTIVE";
		else if (req->status == PANTHERA__USERS__V1__USER_STATUS__DEACTIVATED)
			ch.status = "DEACTIVATED";
		else
			return auth_bad_field(call, "status", "must be ACTIVE or DEACTIVATED");
	}
	user_op op = {.call = call, .id = req->user_id, .resp = resp, .change = &ch};
	return run_change(call, user, &op);
}

static rpc_status delete_user(rpc_call *call, const Panthera__Users__V1__DeleteUserRequest *req,
                              Panthera__Users__V1__DeleteUserResponse *resp, void *user)
{
	(void)resp;
	caller who;
	rpc_status st = may_touch(call, req->user_id, &who);
	if (st != RPC_STATUS_OK)
		return st;
	user_op op = {.call = call, .id = req->user_id, .deactivate = 1};
	return run_change(call, user, &op);
}

/* ---- many users ---- */

typedef struct list_op {
	rpc_call *call;
	long long limit, offset, total;
	const char *ids_literal; /* BatchGetUsers */
	Panthera__Users__V1__User ***users;
	size_t *n_users;
} list_op;

static rpc_status fill_users(list_op *op, const PGresult *r)
{
	size_t n = (size_t)PQntuples(r);
	*op->n_users = 0;
	*op->users = rpc_call_alloc(op->call, (n + 1) * sizeof(**op->users));
	if (*op->users == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	for (size_t i = 0; i < n; i++) {
		Panthera__Users__V1__User *u = rpc_call_alloc(op->call, sizeof(*u));
		if (u == NULL)
			return RPC_STATUS_RESOURCE_EXHAUSTED;
		panthera__users__v1__user__init(u);
		rpc_status st = auth_user_fill(op->call, u, r, (int)i);
		if (st != RPC_STATUS_OK)
			return st;
		(*op->users)[(*op->n_users)++] = u;
	}
	return RPC_STATUS_OK;
}

static rpc_status tx_list_users(db_conn *c, void *arg)
{
	list_op *op = arg;
	PGresult *r;
	rpc_status st = op->ids_literal
	                    ? auth_store_batch_users(c, op->ids_literal, &r)
	                    : auth_store_list_users(c, op->limit, op->offset, &r, &op->total);
	if (st != RPC_STATUS_OK)
		return st;
	st = fill_users(op, r);
	PQclear(r);
	return st;
}

static rpc_status list_users(rpc_call *call, const Panthera__Users__V1__ListUsersRequest *req,
                             Panthera__Users__V1__ListUsersResponse *resp, void *user)
{
	auth_service *svc = user;
	caller who;
	caller_get(call, &who);
	if (who.id == NULL)
		return no_caller(call);
	if (!who.admin) {
		rpc_call_set_error_reason(call, "ADMIN_ONLY", NULL);
		return rpc_call_error(call, RPC_STATUS_PERMISSION_DENIED,
		                      "only an admin may list users");
	}
	if (req->page < 0)
		return auth_bad_field(call, "page", "must be 1 or more");
	if (req->page_size < 0 || req->page_size > USERS_MAX_PAGE_SIZE)
		return auth_bad_field(call, "page_size", "must be between 1 and 100");
	int page = req->page ? req->page : 1;
	int size = req->page_size ? req->page_size : USERS_DEFAULT_PAGE;
	list_op op = {.call = call,
	              .limit = size,
	              .offset = (long long)(page - 1) * size,
	              .users = &resp->users,
	              .n_users = &resp->n_users};
	rpc_status st = db_transaction(svc->pool, 0, auth_db_wait_ms(call), tx_list_users, &op);
	if (st != RPC_STATUS_OK)
		return auth_db_failed(call, st);
	resp->total = op.total > INT32_MAX ? INT32_MAX : (int32_t)op.total;
	resp->page = page;
	resp->page_size = size;
	return RPC_STATUS_OK;
}

static rpc_status batch_get_users(rpc_call *call,
                                  const Panthera__Users__V1__BatchGetUsersRequest *req,
                                  Panthera__Users__V1__BatchGetUsersResponse *resp, void *user)
{
	auth_service *svc = user;
	if (req->n_user_ids == 0 || req->n_user_ids > USERS_MAX_BATCH)
		return auth_bad_field(call, "user_ids", "must hold 1 to 1000 ids");
	/* "{id,id,...}": validated UUIDs, passed as one array parameter */
	char *lit = rpc_call_alloc(call, req->n_user_ids * (ID_UUID_LEN + 1) + 2);
	if (lit == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	size_t o = 0;
	lit[o++] = '{';
	for (size_t i = 0; i < req->n_user_ids; i++) {
		if (!id_is_uuid(req->user_ids[i]))
			return auth_bad_field(call, "user_ids", "must all be UUIDs");
		if (i > 0)
			lit[o++] = ',';
		memcpy(lit + o, req->user_ids[i], ID_UUID_LEN);
		o += ID_UUID_LEN;
	}
	lit[o++] = '}';
	lit[o] = '\0';
	list_op op = {
	    .call = call, .ids_literal = lit, .users = &resp->users, .n_users = &resp->n_users};
	rpc_status st = db_transaction(svc->pool, 0, auth_db_wait_ms(call), tx_list_users, &op);
	return st == RPC_STATUS_OK ? st : auth_db_failed(call, st);
}

/* ---- addresses ---- */

static rpc_status fill_address(rpc_call *call, Panthera__Users__V1__Address *a, const PGresult *r,
                               int row)
{
	a->id = auth_strdup(call, PQgetvalue(r, row, AUTH_ADDR_ID));
	a->street = auth_strdup(call, PQgetvalue(r, row, AUTH_ADDR_STREET));
	a->city = auth_strdup(call, PQgetvalue(r, row, AUTH_ADDR_CITY));
	a->state = auth_strdup(call, PQgetvalue(r, row, AUTH_ADDR_STATE));
	a->zip_code = auth_strdup(call, PQgetvalue(r, row, AUTH_ADDR_ZIP));
	a->country = auth_strdup(call, PQgetvalue(r, row, AUTH_ADDR_COUNTRY));
	a->is_default = PQgetvalue(r, row, AUTH_ADDR_DEFAULT)[0] == 't';
	if (a->id == NULL || a->street == NULL || a->city == NULL || a->state == NULL ||
	    a->zip_code == NULL || a->country == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	return RPC_STATUS_OK;
}

typedef struct address_op {
	rpc_call *call;
	const char *user_id;
	int user_missing, too_many;
	/* ListAddresses */
	Panthera__Users__V1__ListAddressesResponse *list;
	/* CreateAddress */
	const Panthera__Users__V1__CreateAddressRequest *create;
	const char *country;
	char id[ID_UUID_LEN + 1];
	Panthera__Users__V1__Address *created;
	/* DeleteAddress */
	const char *address_id;
} address_op;

/* Find, and with `lock` lock, the user (addresses of one user change one
 * at a time, so the default stays unique without a retry). NOT_FOUND marks
 * user_missing. */
static rpc_status lock_user(db_conn *c, address_op *op, int lock)
{
	PGresult *u;
	rpc_status st = auth_store_get_user(c, op->user_id, lock, &u);
	if (st == RPC_STATUS_NOT_FOUND)
		op->user_missing = 1;
	if (st == RPC_STATUS_OK)
		PQclear(u);
	return st;
}

static rpc_status tx_list_addresses(db_conn *c, void *arg)
{
	address_op *op = arg;
	rpc_status st = lock_user(c, op, 0);
	PGresult *r;
	if (st != RPC_STATUS_OK ||
	    (st = auth_store_address_list(c, op->user_id, &r)) != RPC_STATUS_OK)
		return st;
	size_t n = (size_t)PQntuples(r);
	op->list->n_addresses = 0;
	op->list->addresses = rpc_call_alloc(op->call, (n + 1) * sizeof(*op->list->addresses));
	if (op->list->addresses == NULL)
		st = RPC_STATUS_RESOURCE_EXHAUSTED;
	for (size_t i = 0; i < n && st == RPC_STATUS_OK; i++) {
		Panthera__Users__V1__Address *a = rpc_call_alloc(op->call, sizeof(*a));
		if (a == NULL) {
			st = RPC_STATUS_RESOURCE_EXHAUSTED;
			break;
		}
		panthera__users__v1__address__init(a);
		st = fill_address(op->call, a, r, (int)i);
		op->list->addresses[op->list->n_addresses++] = a;
	}
	PQclear(r);
	return st;
}

static rpc_status tx_create_address(db_conn *c, void *arg)
{
	address_op *op = arg;
	rpc_status st = lock_user(c, op, 1);
	long n = 0;
	if (st != RPC_STATUS_OK ||
	    (st = auth_store_address_count(c, op->user_id, &n)) != RPC_STATUS_OK)
		return st;
	if (n >= USERS_MAX_ADDRESSES) {
		op->too_many = 1;
		return RPC_STATUS_FAILED_PRECONDITION;
	}
	const Panthera__Users__V1__CreateAddressRequest *r = op->create;
	PGresult *a;
	/* the first address is the default whatever the request says */
	st = auth_store_address_insert(c, op->id, op->user_id, r->street, r->city,
	                               r->state ? r->state : "", r->zip_code, op->country,
	                               r->is_default || n == 0, &a);
	if (st != RPC_STATUS_OK)
		return st;
	st = fill_address(op->call, op->created, a, 0);
	PQclear(a);
	return st;
}

static rpc_status tx_delete_address(db_conn *c, void *arg)
{
	address_op *op = arg;
	rpc_status st = lock_user(c, op, 1);
	if (st != RPC_STATUS_OK)
		return st;
	return auth_store_address_delete(c, op->user_id, op->address_id);
}

static rpc_status run_address(rpc_call *call, auth_service *svc, db_tx_fn fn, address_op *op)
{
	op->call = call;
	rpc_status st = db_transaction(svc->pool, 0, auth_db_wait_ms(call), fn, op);
	if (st == RPC_STATUS_OK)
		return st;
	if (st == RPC_STATUS_NOT_FOUND && op->user_missing)
		return user_not_found(call, op->user_id);
	if (st == RPC_STATUS_NOT_FOUND) {
		rpc_call_set_error_reason(call, "ADDRESS_NOT_FOUND", NULL);
		return rpc_call_error(call, st, "address %s not found", op->address_id);
	}
	if (st == RPC_STATUS_FAILED_PRECONDITION && op->too_many) {
		rpc_call_set_error_reason(call, "TOO_MANY_ADDRESSES", NULL);
		return rpc_call_error(call, st, "a user may keep at most %d addresses",
		                      USERS_MAX_ADDRESSES);
	}
	return auth_db_failed(call, st);
}

static rpc_status list_addresses(rpc_call *call,
                                 const Panthera__Users__V1__ListAddressesRequest *req,
                                 Panthera__Users__V1__ListAddressesResponse *resp, void *user)
{
	caller who;
	rpc_status st = may_touch(call, req->user_id, &who);
	if (st != RPC_STATUS_OK)
		return st;
	address_op op = {.user_id = req->user_id, .list = resp};
	return run_address(call, user, tx_list_addresses, &op);
}

static rpc_status create_address(rpc_call *call,
                                 const Panthera__Users__V1__CreateAddressRequest *req,
                                 Panthera__Users__V1__Address *resp, void *user)
{
	caller who;
	rpc_status st = may_touch(call, req->user_id, &who);
	if (st != RPC_STATUS_OK)
		return st;
	char country[3];
	const char *why;
	if (!auth_text_ok(req->street, 1, 200))
		return auth_bad_field(call, "street", "must be 1 to 200 characters");
	if (!auth_text_ok(req->city, 1, 100))
		return auth_bad_field(call, "city", "must be 1 to 100 characters");
	if (!auth_text_ok(req->state, 0, 100))
		return auth_bad_field(call, "state", "must be at most 100 characters");
	if (!auth_text_ok(req->zip_code, 1, 20))
		return auth_bad_field(call, "zip_code", "must be 1 to 20 characters");
	if ((why = auth_check_country(req->country, country)) != NULL)
		return auth_bad_field(call, "country", why);
	address_op op = {
	    .user_id = req->user_id, .create = req, .country = country, .created = resp};
	if ((st = id_uuid4(op.id)) != RPC_STATUS_OK)
		return rpc_call_error(call, st, "cannot create an address now");
	return run_address(call, user, tx_create_address, &op);
}

static rpc_status delete_address(rpc_call *call,
                                 const Panthera__Users__V1__DeleteAddressRequest *req,
                                 Panthera__Users__V1__DeleteAddressResponse *resp, void *user)
{
	(void)resp;
	caller who;
	rpc_status st = may_touch(call, req->user_id, &who);
	if (st != RPC_STATUS_OK)
		return st;
	if (!id_is_uuid(req->address_id))
		return auth_bad_field(call, "address_id", "must be a UUID");
	address_op op = {.user_id = req->user_id, .address_id = req->address_id};
	return run_address(call, user, tx_delete_address, &op);
}

const panthera_users_v1_user_service_handlers auth_user_handlers = {
    .get_current_user = get_current_user,
    .list_users = list_users,
    .get_user = get_user,
    .update_user = update_user,
    .delete_user = delete_user,
    .list_addresses = list_addresses,
    .create_address = create_address,
    .delete_address = delete_address,
    .batch_get_users = batch_get_users,
};
