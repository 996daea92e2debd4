/*
 * order.c - place an order through the installed Panthera SDK and wait for
 * it to settle.
 *
 *     order URL EMAIL PASSWORD [PAYMENT_METHOD [IDEMPOTENCY_KEY]]
 *
 * 1. AuthService.RegisterUser with EMAIL and PASSWORD (an account that
 *    exists already is fine), then AuthService.Login, then
 *    AuthService.VerifyToken on the access token: the user's id and roles.
 * 2. CatalogService.ListProducts: the first product in stock.
 * 3. OrderService.CreateOrder for one of it, as that user (metadata
 *    x-caller-id and x-caller-roles, see below), with an idempotency key
 *    (IDEMPOTENCY_KEY, else a random one); a call that got no answer
 *    (UNAVAILABLE, DEADLINE_EXCEEDED) is sent again with the same key, so
 *    the order is placed at most once.
 * 4. OrderService.GetOrder every 200 ms, for at most 30 s, until the order
 *    leaves PENDING_PAYMENT, then prints it.
 *
 * PAYMENT_METHOD is one of the test provider's (default pm_card_visa;
 * pm_card_declined fails). Exit status: 0 when the order is PAID, 2 when
 * it settled otherwise (PAYMENT_FAILED), 1 on any error.
 *
 * The caller's identity: over RPC, services take the caller from the
 * request metadata x-caller-id / x-caller-roles, and trust it, because only
 * the REST gateway and other services reach the RPC network (see
 * client-sdk/README.md). A program using the SDK is such a trusted backend:
 * like the gateway it must establish who the user is (here: the user's own
 * password, then the token verified by AuthService) before speaking for them.
 *
 * Output: "user <id>", "product <id> <name>", "order <id> placed
 * (key <key>)", "status <STATUS>" at each change, then the order:
 * "order <id> <STATUS> total <amount> <currency>" and one "item" line each.
 */
#define _POSIX_C_SOURCE 200809L /* nanosleep, clock_gettime */

#include <errno.h>
#include <stdio.h>
#include <time.h>

#include "panthera/auth/v1/auth.panthera.h"
#include "panthera/catalog/v1/catalog.panthera.h"
#include "panthera/orders/v1/orders.panthera.h"

#define ORDER_POLL_MS   200
#define ORDER_SETTLE_MS 30000
#define ORDER_CALL_MS   5000
#define ORDER_MAX_SENDS 3
#define ORDER_ID_CAP    64 /* a UUID and its NUL, with room */

/* Who the calls speak for: what VerifyToken said of the access token. */
typedef struct order_caller {
	char id[ORDER_ID_CAP];
	char roles[32]; /* "USER" or "USER,ADMIN" */
} order_caller;

static void order_report(const char *what, rpc_status st, const rpc_reply *reply)
{
	fprintf(stderr, "order: %s: %s: %s\n", what, rpc_status_name(st), rpc_reply_message(reply));
}

/* The name of an order status, as the REST API spells it ("PAID"). */
static const char *order_status_name(Panthera__Orders__V1__OrderStatus s)
{
	const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
	    &panthera__orders__v1__order_status__descriptor, s);
	return v != NULL ? v->name : "UNKNOWN";
}

static uint64_t order_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void order_sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* A random idempotency key: 32 hex digits from /dev/urandom. 0 on success. */
static int order_random_key(char *out, size_t cap)
{
	unsigned char raw[16];
	FILE *f = fopen("/dev/urandom", "rb");
	if (f == NULL)
		return -1;
	size_t n = fread(raw, 1, sizeof(raw), f);
	fclose(f);
	if (n != sizeof(raw) || cap < 2 * sizeof(raw) + 1)
		return -1;
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(out + 2 * i, 3, "%02x", raw[i]);
	return 0;
}

/* Step 1: an account (new or existing), a session, and who it is. */
static int order_sign_in(rpc_channel *ch, const char *email, const char *password,
                         order_caller *who)
{
	const rpc_call_opts opts = {.timeout_ms = ORDER_CALL_MS};
	rpc_reply *reply = NULL;
	int rc = -1;

	Panthera__Auth__V1__RegisterUserRequest reg =
	    PANTHERA__AUTH__V1__REGISTER_USER_REQUEST__INIT;
	reg.email = (char *)email; /* stubs only read requests */
	reg.password = (char *)password;
	reg.first_name = "SDK";
	reg.last_name = "Example";
	rpc_status st = panthera_auth_v1_auth_service_register_user(ch, &reg, &opts, NULL, &reply);
	if (st != RPC_STATUS_OK && st != RPC_STATUS_ALREADY_EXISTS) {
		order_report("RegisterUser", st, reply);
		goto out;
	}
	rpc_reply_free(reply);
	reply = NULL;

	Panthera__Auth__V1__LoginRequest login = PANTHERA__AUTH__V1__LOGIN_REQUEST__INIT;
	login.email = (char *)email;
	login.password = (char *)password;
	const Panthera__Auth__V1__Tokens *tokens;
	st = panthera_auth_v1_auth_service_login(ch, &login, &opts, &tokens, &reply);
	if (st != RPC_STATUS_OK) {
		order_report("Login", st, reply);
		goto out;
	}

	/* The token's claims, verified by the auth service: `reply` still owns
	 * tokens->access_token, so it is freed only after this call. */
	Panthera__Auth__V1__VerifyTokenRequest vreq =
	    PANTHERA__AUTH__V1__VERIFY_TOKEN_REQUEST__INIT;
	vreq.access_token = tokens->access_token;
	const Panthera__Auth__V1__VerifyTokenResponse *claims;
	rpc_reply *vreply = NULL;
	st = panthera_auth_v1_auth_service_verify_token(ch, &vreq, &opts, &claims, &vreply);
	if (st != RPC_STATUS_OK) {
		order_report("VerifyToken", st, vreply);
		rpc_reply_free(vreply);
		goto out;
	}
	int admin = 0;
	for (size_t i = 0; i < claims->n_roles; i++)
		admin |= claims->roles[i] == PANTHERA__USERS__V1__ROLE__ADMIN;
	snprintf(who->id, sizeof(who->id), "%s", claims->user_id);
	snprintf(who->roles, sizeof(who->roles), "%s", admin ? "USER,ADMIN" : "USER");
	rpc_reply_free(vreply);
	printf("user %s\n", who->id);
	rc = 0;
out:
	rpc_reply_free(reply);
	return rc;
}

/* Step 2: the first product, by name, with stock on hand. `id` is OUT. */
static int order_pick_product(rpc_channel *ch, char *id, size_t cap)
{
	const rpc_call_opts opts = {.timeout_ms = ORDER_CALL_MS, .max_retries = 1};
	Panthera__Catalog__V1__ListProductsRequest req =
	    PANTHERA__CATALOG__V1__LIST_PRODUCTS_REQUEST__INIT;
	req.page_size = 100;
	req.sort_by = "name";
	const Panthera__Catalog__V1__ListProductsResponse *resp;
	rpc_reply *reply = NULL;
	rpc_status st =
	    panthera_catalog_v1_catalog_service_list_products(ch, &req, &opts, &resp, &reply);
	if (st != RPC_STATUS_OK) {
		order_report("ListProducts", st, reply);
		rpc_reply_free(reply);
		return -1;
	}
	int rc = -1;
	for (size_t i = 0; i < resp->n_products; i++) {
		const Panthera__Catalog__V1__Product *p = resp->products[i];
		if (p->stock > 0) {
			snprintf(id, cap, "%s", p->id);
			printf("product %s %s\n", p->id, p->name);
			rc = 0;
			break;
		}
	}
	if (rc != 0)
		fprintf(stderr, "order: no product in stock on the first page\n");
	rpc_reply_free(reply);
	return rc;
}

/*
 * Step 3: place the order as `who`, with idempotency key `key`. `order_id`
 * is OUT. Sent again, with the same key, only when no answer came back.
 */
static int order_place(rpc_channel *ch, const order_caller *who, const char *product_id,
                       const char *payment_method, const char *key, char *order_id, size_t cap)
{
	const rpc_metadata_entry md[] = {
	    {.key = "x-caller-id", .value = who->id},
	    {.key = "x-caller-roles", .value = who->roles},
	    {.key = "idempotency-key", .value = key},
	};
	const rpc_call_opts opts = {.timeout_ms = ORDER_CALL_MS, .metadata = md, .n_metadata = 3};

	Panthera__Orders__V1__CheckoutItem item = PANTHERA__ORDERS__V1__CHECKOUT_ITEM__INIT;
	item.product_id = (char *)product_id;
	item.quantity = 1;
	Panthera__Orders__V1__CheckoutItem *items[] = {&item};
	Panthera__Orders__V1__ShippingAddress addr = PANTHERA__ORDERS__V1__SHIPPING_ADDRESS__INIT;
	addr.street = "1 Main St";
	addr.city = "Springfield";
	addr.zip_code = "12345";
	addr.country = "US";
	Panthera__Orders__V1__CreateOrderRequest req =
	    PANTHERA__ORDERS__V1__CREATE_ORDER_REQUEST__INIT;
	req.n_items = 1;
	req.items = items;
	req.shipping_address = &addr;
	req.payment_method_id = (char *)payment_method;

	for (int send = 1;; send++) {
		const Panthera__Orders__V1__Order *o;
		rpc_reply *reply = NULL;
		rpc_status st =
		    panthera_orders_v1_order_service_create_order(ch, &req, &opts, &o, &reply);
		if (st == RPC_STATUS_OK) {
			snprintf(order_id, cap, "%s", o->id);
			printf("order %s placed (key %s)\n", o->id, key);
			rpc_reply_free(reply);
			return 0;
		}
		int again = (st == RPC_STATUS_UNAVAILABLE || st == RPC_STATUS_DEADLINE_EXCEEDED) &&
		            send < ORDER_MAX_SENDS;
		order_report(again ? "CreateOrder (sending again)" : "CreateOrder", st, reply);
		rpc_reply_free(reply);
		if (!again)
			return -1;
		order_sleep_ms(ORDER_POLL_MS);
	}
}

static void order_print(const Panthera__Orders__V1__Order *o)
{
	printf("order %s %s total %s %s\n", o->id, order_status_name(o->status), o->total_amount,
	       o->currency);
	for (size_t i = 0; i < o->n_items; i++)
		printf("item %s %d x %s = %s %s\n", o->items[i]->name, (int)o->items[i]->quantity,
		       o->items[i]->unit_price, o->items[i]->line_total, o->currency);
}

/* Step 4: read the order until it settles. Returns its final status, or
 * ORDER_STATUS_UNSPECIFIED on an error or when it does not settle in time. */
static Panthera__Orders__V1__OrderStatus order_wait(rpc_channel *ch, const order_caller *who,
                                                    const char *order_id)
{
	const rpc_metadata_entry md[] = {
	    {.key = "x-caller-id", .value = who->id},
	    {.key = "x-caller-roles", .value = who->roles},
	};
	const rpc_call_opts opts = {
	    .timeout_ms = ORDER_CALL_MS, .metadata = md, .n_metadata = 2, .max_retries = 1};
	Panthera__Orders__V1__GetOrderRequest req = PANTHERA__ORDERS__V1__GET_ORDER_REQUEST__INIT;
	req.order_id = (char *)order_id;
	Panthera__Orders__V1__OrderStatus seen =
	    PANTHERA__ORDERS__V1__ORDER_STATUS__ORDER_STATUS_UNSPECIFIED;
	uint64_t until = order_now_ms() + ORDER_SETTLE_MS;
	for (;;) {
		const Panthera__Orders__V1__Order *o;
		rpc_reply *reply = NULL;
		rpc_status st =
		    panthera_orders_v1_order_service_get_order(ch, &req, &opts, &o, &reply);
		if (st != RPC_STATUS_OK) {
			order_report("GetOrder", st, reply);
			rpc_reply_free(reply);
			return PANTHERA__ORDERS__V1__ORDER_STATUS__ORDER_STATUS_UNSPECIFIED;
		}
		if (o->status != seen) {
			seen = o->status;
			printf("status %s\n", order_status_name(seen));
		}
		if (seen != PANTHERA__ORDERS__V1__ORDER_STATUS__PENDING_PAYMENT) {
			order_print(o);
			rpc_reply_free(reply);
			return seen;
		}
		rpc_reply_free(reply);
		if (order_now_ms() >= until) {
			fprintf(stderr, "order: still PENDING_PAYMENT after %d ms\n",
			        ORDER_SETTLE_MS);
			return PANTHERA__ORDERS__V1__ORDER_STATUS__ORDER_STATUS_UNSPECIFIED;
		}
		order_sleep_ms(ORDER_POLL_MS);
	}
}

int main(int argc, char **argv)
{
	if (argc < 4 || argc > 6) {
		fprintf(stderr,
		        "usage: order URL EMAIL PASSWORD [PAYMENT_METHOD [IDEMPOTENCY_KEY]]\n");
		return 1;
	}
	const char *url = argv[1];
	const char *payment_method = argc > 4 ? argv[4] : "pm_card_visa";
	char key[256];
	if (argc > 5) {
		if (snprintf(key, sizeof(key), "%s", argv[5]) >= (int)sizeof(key)) {
			fprintf(stderr,
			        "order: the idempotency key is longer than 255 characters\n");
			return 1;
		}
	} else if (order_random_key(key, sizeof(key)) != 0) {
		fprintf(stderr, "order: cannot read /dev/urandom for an idempotency key\n");
		return 1;
	}

	rpc_channel *ch = NULL;
	rpc_channel_opts copts = {.connect_wait_ms = 3000};
	rpc_status st = rpc_channel_open(&ch, &url, 1, &copts);
	if (st != RPC_STATUS_OK) {
		fprintf(stderr, "order: cannot open a channel to %s: %s\n", url,
		        rpc_status_name(st));
		return 1;
	}
	order_caller who;
	char product_id[ORDER_ID_CAP], order_id[ORDER_ID_CAP];
	int rc = 1;
	if (order_sign_in(ch, argv[2], argv[3], &who) != 0 ||
	    order_pick_product(ch, product_id, sizeof(product_id)) != 0 ||
	    order_place(ch, &who, product_id, payment_method, key, order_id, sizeof(order_id)) != 0)
		goto out;
	Panthera__Orders__V1__OrderStatus final = order_wait(ch, &who, order_id);
	if (final == PANTHERA__ORDERS__V1__ORDER_STATUS__PAID)
		rc = 0;
	else if (final != PANTHERA__ORDERS__V1__ORDER_STATUS__ORDER_STATUS_UNSPECIFIED)
		rc = 2;
out:
	rpc_channel_close(ch);
	return rc;
}
