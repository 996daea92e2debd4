/*
 * price.c - products from CatalogService and the priced cart; see
 * cart_price.h. Money is integer cents here, with every product and sum
 * checked for overflow, and decimal text with two places on the wire.
 */
#include "cart_price.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "panthera/catalog/v1/catalog.panthera.h"
#include "panthera/log.h"

static const char *str(const char *s)
{
	return s != NULL ? s : "";
}

static char *arena_strdup(rpc_call *call, const char *s)
{
	size_t n = strlen(s);
	char *d = rpc_call_alloc(call, n + 1);
	if (d != NULL)
		memcpy(d, s, n + 1);
	return d;
}

void cart_catalog_init(cart_catalog *cat, rpc_call *call, cart_service *svc)
{
	memset(cat, 0, sizeof(*cat));
	cat->call = call;
	cat->svc = svc;
	cat->failure = RPC_STATUS_OK;
}

const cart_product *cart_catalog_find(const cart_catalog *cat, const char *id)
{
	for (size_t i = 0; i < cat->n; i++) {
		if (strcasecmp(cat->products[i].id, id) == 0)
			return &cat->products[i];
	}
	return NULL;
}

/* Room for `more` products; RESOURCE_EXHAUSTED when the arena is out. */
static rpc_status reserve_room(cart_catalog *cat, size_t more)
{
	if (cat->n + more <= cat->cap)
		return RPC_STATUS_OK;
	size_t cap = cat->cap ? cat->cap * 2 : 16;
	if (cap < cat->n + more)
		cap = cat->n + more;
	cart_product *p = rpc_call_alloc(cat->call, cap * sizeof(*p));
	if (p == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	if (cat->n > 0)
		memcpy(p, cat->products, cat->n * sizeof(*p));
	cat->products = p;
	cat->cap = cap;
	return RPC_STATUS_OK;
}

static rpc_status failed(cart_catalog *cat, rpc_status st, const char *message)
{
	cat->failure = st;
	snprintf(cat->failure_message, sizeof(cat->failure_message), "%s", message);
	return st;
}

/* Record what the catalog said about product `p`, one of the n asked[]. */
static rpc_status take_product(cart_catalog *cat, const Panthera__Catalog__V1__Product *p,
                               char **asked, size_t n)
{
	const char *id = str(p->id);
	size_t i = 0;
	while (i < n && strcasecmp(asked[i], id) != 0)
		i++;
	if (i == n || cart_catalog_find(cat, asked[i]) != NULL)
		return RPC_STATUS_OK; /* not asked for, or twice in the reply */
	cart_product *out = &cat->products[cat->n];
	memset(out, 0, sizeof(*out));
	memcpy(out->id, asked[i], ID_UUID_LEN + 1);
	out->name = "";
	if (p->is_active) {
		if (money_parse(str(p->price), &out->price) != 0 ||
		    !money_currency_valid(p->currency)) {
			log_write(LOG_ERROR, rpc_call_metadata(cat->call, "x-request-id"),
			          "cart.catalog", "product %s: malformed price or currency",
			          out->id);
			return RPC_STATUS_INTERNAL;
		}
		out->name = arena_strdup(cat->call, str(p->name));
		if (out->name == NULL)
			return RPC_STATUS_RESOURCE_EXHAUSTED;
		memcpy(out->currency, p->currency, 4);
		out->sellable = 1;
	}
	cat->n++;
	return RPC_STATUS_OK;
}

rpc_status cart_catalog_fetch(cart_catalog *cat, const char *const *ids, size_t n)
{
	/* the ids not known yet, each once */
	char **asked = rpc_call_alloc(cat->call, (n + 1) * sizeof(*asked));
	if (asked == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	size_t m = 0;
	for (size_t i = 0; i < n; i++) {
		if (cart_catalog_find(cat, ids[i]) != NULL)
			continue;
		size_t j = 0;
		while (j < m && strcasecmp(asked[j], ids[i]) != 0)
			j++;
		if (j == m)
			asked[m++] = (char *)ids[i];
	}
	if (m == 0)
		return RPC_STATUS_OK;
	rpc_status st = reserve_room(cat, m);
	if (st != RPC_STATUS_OK)
		return st;

	uint32_t left = rpc_call_remaining_ms(cat->call);
	if (left == 0)
		return failed(cat, RPC_STATUS_DEADLINE_EXCEEDED, "no time was left to ask it");
	uint32_t limit = cat->svc->catalog_timeout_ms ? cat->svc->catalog_timeout_ms
	                                              : CART_DEFAULT_CATALOG_TIMEOUT_MS;
	rpc_call_opts o = {.timeout_ms = left < limit ? left : limit,
	                   .max_retries = 1}; /* BatchGetProducts has no side effects */
	rpc_metadata_entry md;
	const char *request_id = rpc_call_metadata(cat->call, "x-request-id");
	if (request_id != NULL) {
		md = (rpc_metadata_entry){"x-request-id", request_id};
		o.metadata = &md;
		o.n_metadata = 1;
	}
	Panthera__Catalog__V1__BatchGetProductsRequest req =
	    PANTHERA__CATALOG__V1__BATCH_GET_PRODUCTS_REQUEST__INIT;
	req.product_ids = asked;
	req.n_product_ids = m;
	const Panthera__Catalog__V1__BatchGetProductsResponse *resp = NULL;
	rpc_reply *reply = NULL;
	st = panthera_catalog_v1_catalog_service_batch_get_products(cat->svc->catalog, &req, &o,
	                                                            &resp, &reply);
	if (st == RPC_STATUS_OK && resp == NULL) {
		rpc_reply_free(reply);
		return RPC_STATUS_INTERNAL; /* an answer without its payload */
	}
	if (st != RPC_STATUS_OK) {
		log_write(LOG_WARN, request_id, "cart.catalog", "BatchGetProducts failed: %s: %s",
		          rpc_status_name(st), rpc_reply_message(reply));
		failed(cat, st, rpc_reply_message(reply));
		rpc_reply_free(reply);
		return st;
	}
	for (size_t i = 0; i < resp->n_products && st == RPC_STATUS_OK; i++)
		st = take_product(cat, resp->products[i], asked, m);
	rpc_reply_free(reply);
	if (st != RPC_STATUS_OK)
		return st;
	/* what the catalog does not know is not for sale */
	for (size_t i = 0; i < m; i++) {
		if (cart_catalog_find(cat, asked[i]) != NULL)
			continue;
		cart_product *out = &cat->products[cat->n++];
		memset(out, 0, sizeof(*out));
		memcpy(out->id, asked[i], ID_UUID_LEN + 1);
		out->name = "";
	}
	return RPC_STATUS_OK;
}

rpc_status cart_catalog_fetch_view(cart_catalog *cat, const cart_view *v, const char *extra)
{
	const char *ids[CART_MAX_LINES + 1];
	size_t n = 0;
	for (size_t i = 0; i < v->n; i++)
		ids[n++] = v->lines[i].product_id;
	if (extra != NULL)
		ids[n++] = extra;
	return cart_catalog_fetch(cat, ids, n);
}

const char *cart_view_currency(const cart_catalog *cat, const cart_view *v)
{
	for (size_t i = 0; i < v->n; i++) {
		const cart_product *p = cart_catalog_find(cat, v->lines[i].product_id);
		if (p != NULL && p->sellable)
			return p->currency;
	}
	return "";
}

static rpc_status money_text(rpc_call *call, int64_t cents, char **out)
{
	char buf[MONEY_TEXT];
	money_format(buf, cents);
	*out = arena_strdup(call, buf);
	return *out != NULL ? RPC_STATUS_OK : RPC_STATUS_RESOURCE_EXHAUSTED;
}

rpc_status cart_price_view(cart_catalog *cat, const char *user_id, const cart_view *v,
                           Panthera__Cart__V1__Cart *out)
{
	rpc_call *call = cat->call;
	rpc_status st = cart_catalog_fetch_view(cat, v, NULL);
	if (st != RPC_STATUS_OK)
		return st;
	const char *currency = cart_view_currency(cat, v);
	out->items = rpc_call_alloc(call, (v->n + 1) * sizeof(*out->items));
	out->user_id = arena_strdup(call, user_id);
	out->currency = arena_strdup(call, currency);
	if (out->items == NULL || out->user_id == NULL || out->currency == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	out->n_items = 0;
	int64_t subtotal = 0;
	for (size_t i = 0; i < v->n; i++) {
		const cart_line *l = &v->lines[i];
		const cart_product *p = cart_catalog_find(cat, l->product_id);
		/* deleted, unknown, or now in another currency: not in the view */
		if (p == NULL || !p->sellable || strcmp(p->currency, currency) != 0)
			continue;
		int64_t total;
		if (__builtin_mul_overflow(p->price, (int64_t)l->quantity, &total) ||
		    __builtin_add_overflow(subtotal, total, &subtotal))
			return RPC_STATUS_OUT_OF_RANGE;
		Panthera__Cart__V1__CartItem *it = rpc_call_alloc(call, sizeof(*it));
		if (it == NULL)
			return RPC_STATUS_RESOURCE_EXHAUSTED;
		panthera__cart__v1__cart_item__init(it);
		it->product_id = arena_strdup(call, l->product_id);
		it->name = (char *)p->name;
		it->quantity = l->quantity;
		if (it->product_id == NULL ||
		    (st = money_text(call, p->price, &it->unit_price)) != RPC_STATUS_OK ||
		    (st = money_text(call, total, &it->line_total)) != RPC_STATUS_OK)
			return RPC_STATUS_RESOURCE_EXHAUSTED;
		out->items[out->n_items++] = it;
	}
	if ((st = money_text(call, subtotal, &out->subtotal)) != RPC_STATUS_OK)
		return st;
	if (v->exists) {
		Google__Protobuf__Timestamp *t = rpc_call_alloc(call, sizeof(*t));
		if (t == NULL)
			return RPC_STATUS_RESOURCE_EXHAUSTED;
		google__protobuf__timestamp__init(t);
		long long us = v->updated_us;
		long long s = us / 1000000, frac = us % 1000000;
		if (frac < 0) {
			s--;
			frac += 1000000;
		}
		t->seconds = s;
		t->nanos = (int32_t)(frac * 1000);
		out->updated_at = t;
	}
	return RPC_STATUS_OK;
}
