/*
 * config.c - the one table of settings, and reading it; see config.h.
 */
#include "panthera/config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The table. Add a setting here and nowhere else. */
const cfg_var cfg_vars[] = {
    {"db-url", "PANTHERA_DB_URL", CFG_STRING, NULL, 0, 0, 1,
     "PostgreSQL URL of every service; unset: make run starts a private cluster. "
     "PANTHERA_<SERVICE>_DB_URL (e.g. PANTHERA_CATALOG_DB_URL) gives one service its own database."},
    {"data-dir", "PANTHERA_DATA_DIR", CFG_STRING, "./.panthera", 0, 0, 0,
     "Folder of the private PostgreSQL cluster and of generated signing keys."},
    {"http-addr", "PANTHERA_HTTP_ADDR", CFG_STRING, "127.0.0.1:8080", 0, 0, 0,
     "Address the REST gateway listens on (pantherad, which serves every service, and "
     "panthera-gateway); \"off\": no HTTP (pantherad)."},
    {"http-threads", "PANTHERA_HTTP_THREADS", CFG_INT, "0", 0, 64, 0,
     "Event-loop threads of the gateway; 0: one per core."},
    {"http-tls-cert", "PANTHERA_HTTP_TLS_CERT", CFG_STRING, NULL, 0, 0, 0,
     "PEM file of the gateway's certificate (chain): with PANTHERA_HTTP_TLS_KEY, the gateway "
     "serves HTTPS (HTTP/2 and HTTP/1.1 by ALPN); both unset: plain HTTP/1.1."},
    {"http-tls-key", "PANTHERA_HTTP_TLS_KEY", CFG_STRING, NULL, 0, 0, 0,
     "PEM file of the private key of PANTHERA_HTTP_TLS_CERT."},
    {"http-cache-mib", "PANTHERA_HTTP_CACHE_MIB", CFG_INT, "64", 0, 65536, 0,
     "MiB the gateway's response cache of cacheable GET routes may hold; 0: no cache."},
    {"openapi-file", "PANTHERA_OPENAPI_FILE", CFG_STRING, NULL, 0, 0, 0,
     "The OpenAPI document the gateway serves at /openapi.json; unset: 404 there."},
    {"rpc-url", "PANTHERA_RPC_URL", CFG_STRING, "inproc://panthera", 0, 0, 0,
     "nng URL a service binary serves on (inproc://, ipc://, tcp://, tls+tcp://)."},
    {"rpc-workers", "PANTHERA_RPC_WORKERS", CFG_INT, "8", 1, 256, 0,
     "Handler threads of each RPC server (catalog calls inventory from a handler: keep 2 or more)."},
    {"rpc-queue", "PANTHERA_RPC_QUEUE", CFG_INT, "64", 1, 65536, 0,
     "Calls that may wait for a handler thread; more are refused with RESOURCE_EXHAUSTED."},
    {"rpc-tls-cert", "PANTHERA_RPC_TLS_CERT", CFG_STRING, NULL, 0, 0, 0,
     "PEM file of this process's RPC certificate (chain): served on a tls+tcp:// "
     "PANTHERA_RPC_URL, and presented to the services it dials over tls+tcp:// (mutual TLS)."},
    {"rpc-tls-key", "PANTHERA_RPC_TLS_KEY", CFG_STRING, NULL, 0, 0, 0,
     "PEM file of the private key of PANTHERA_RPC_TLS_CERT."},
    {"rpc-tls-ca", "PANTHERA_RPC_TLS_CA", CFG_STRING, NULL, 0, 0, 0,
     "PEM file of the CA of internal RPC: the services dialed over tls+tcp:// must show a "
     "certificate it signed (required to dial tls+tcp:// URLs), and so must the callers of a "
     "tls+tcp:// PANTHERA_RPC_URL (unset there: callers need no certificate)."},
    {"rpc-tls-server-name", "PANTHERA_RPC_TLS_SERVER_NAME", CFG_STRING, NULL, 0, 0, 0,
     "DNS name the certificates of services dialed over tls+tcp:// must carry; unset: the "
     "URL's host. Needed when URLs hold IP addresses (nng's TLS checks DNS names only)."},
    {"max-message", "PANTHERA_MAX_MESSAGE", CFG_INT, "4194304", 1024, 268435456, 0,
     "Largest RPC payload in bytes."},
    {"db-pool-size", "PANTHERA_DB_POOL_SIZE", CFG_INT, "8", 1, 1000, 0,
     "PostgreSQL connections per service."},
    {"migrations-dir", "PANTHERA_MIGRATIONS_DIR", CFG_STRING, "./services", 0, 0, 0,
     "Folder holding <service>/migrations/NNN_name.sql, applied at start."},
    {"sweep-interval-s", "PANTHERA_SWEEP_INTERVAL_S", CFG_INT, "10", 1, 3600, 0,
     "How often expired stock reservations are released."},
    {"event-retention-s", "PANTHERA_EVENT_RETENTION_S", CFG_INT, "604800", 0, 315360000, 0,
     "Seconds an event stays in its outbox after every reader has passed it (and a processed "
     "event id is remembered); 0 keeps them forever."},
    {"seed-demo", "PANTHERA_SEED_DEMO", CFG_BOOL, "true", 0, 0, 0,
     "Load the demo catalog (a few categories, about thirty products with stock) into an empty catalog."},
    {"services", "PANTHERA_SERVICES", CFG_STRING, "all", 0, 0, 0,
     "Which services this process serves: all, or a comma-separated list of auth, catalog, "
     "inventory, orders, payments, cart, analytics, reviews, notifications "
     "(panthera-<service> binaries default to theirs)."},
    {"catalog-url", "PANTHERA_CATALOG_URL", CFG_STRING, NULL, 0, 0, 0,
     "nng URL of CatalogService for orders, cart and reviews, when it is not served in this "
     "process; and for panthera-gateway (required there, as every URL below but smtp-url). "
     "This and every *-url below take several URLs, comma-separated, one per replica: calls "
     "are spread over those connected."},
    {"cart-url", "PANTHERA_CART_URL", CFG_STRING, NULL, 0, 0, 0,
     "nng URL of CartService for orders (checkout of a cart), when not served here; unset: "
     "orders need their items. And for panthera-gateway."},
    {"orders-url", "PANTHERA_ORDERS_URL", CFG_STRING, NULL, 0, 0, 0,
     "nng URL of OrderService for payments (paying an order again) and reviews, when not "
     "served here; and for panthera-gateway."},
    {"users-url", "PANTHERA_USERS_URL", CFG_STRING, NULL, 0, 0, 0,
     "nng URL of UserService (the auth service) for reviews and notifications, when not served "
     "here; and of AuthService and UserService for panthera-gateway."},
    {"notifications-url", "PANTHERA_NOTIFICATIONS_URL", CFG_STRING, NULL, 0, 0, 0,
     "nng URL of NotificationService for auth's password-reset emails, when not served here; "
     "unset: they go to the log (the user id only). And for panthera-gateway."},
    {"payments-url", "PANTHERA_PAYMENTS_URL", CFG_STRING, NULL, 0, 0, 0,
     "nng URL of PaymentService for orders (refunds), when not served here; and for "
     "panthera-gateway."},
    {"inventory-url", "PANTHERA_INVENTORY_URL", CFG_STRING, NULL, 0, 0, 0,
     "nng URL of InventoryService for the catalog and orders, when not served here; and for "
     "panthera-gateway."},
    {"reviews-url", "PANTHERA_REVIEWS_URL", CFG_STRING, NULL, 0, 0, 0,
     "nng URL of ReviewService for panthera-gateway."},
    {"analytics-url", "PANTHERA_ANALYTICS_URL", CFG_STRING, NULL, 0, 0, 0,
     "nng URL of AnalyticsService for panthera-gateway."},
    {"jwt-issuer", "PANTHERA_JWT_ISSUER", CFG_STRING, "panthera", 0, 0, 0,
     "iss of access tokens: what auth signs and the gateway expects (printable ASCII)."},
    {"log-level", "PANTHERA_LOG_LEVEL", CFG_STRING, "info", 0, 0, 0, "debug, info, warn or error."},
    {"bootstrap-admin-email", "PANTHERA_BOOTSTRAP_ADMIN_EMAIL", CFG_STRING, NULL, 0, 0, 0,
     "With the password: make sure this account exists with role ADMIN at start (an existing account is promoted only if the password is its own)."},
    {"bootstrap-admin-password", "PANTHERA_BOOTSTRAP_ADMIN_PASSWORD", CFG_STRING, NULL, 0, 0, 1,
     "Password of the bootstrap admin account."},
    {"cors-origins", "PANTHERA_CORS_ORIGINS", CFG_STRING, "", 0, 0, 0,
     "Comma-separated origins allowed by CORS (scheme://host[:port]), or * for any origin "
     "without credentials; empty: no CORS."},
    {"trusted-proxies", "PANTHERA_TRUSTED_PROXIES", CFG_STRING, "", 0, 0, 0,
     "Comma-separated IPs and CIDR blocks of reverse proxies whose X-Forwarded-For the gateway "
     "believes (e.g. 10.0.0.0/8, fd00::/8); empty: the socket peer is the client."},
    {"rate-limit-burst", "PANTHERA_RATE_LIMIT_BURST", CFG_INT, "0", 0, 100000000, 0,
     "Requests a client may make at once before PANTHERA_RATE_LIMIT_PER_MIN applies; 0: the "
     "per-minute value."},
    {"auth-rate-limit-burst", "PANTHERA_AUTH_RATE_LIMIT_BURST", CFG_INT, "0", 0, 100000000, 0,
     "The same for login, register and password reset; 0: the per-minute value."},
    {"rate-limit-buckets", "PANTHERA_RATE_LIMIT_BUCKETS", CFG_INT, "100000", 64, 16777216, 0,
     "Rate-limit buckets kept in memory (about 110 bytes each); the least recently used make "
     "room."},
    {"rate-limit-per-min", "PANTHERA_RATE_LIMIT_PER_MIN", CFG_INT, "600", 1, 1000000, 0,
     "Requests per minute per client address and per user."},
    {"auth-rate-limit-per-min", "PANTHERA_AUTH_RATE_LIMIT_PER_MIN", CFG_INT, "20", 1, 1000000, 0,
     "Login, register and password-reset requests per minute per client address."},
    {"smtp-url", "PANTHERA_SMTP_URL", CFG_STRING, NULL, 0, 0, 0,
     "smtp://host:port of the mail relay; unset: emails go to the log."},
    {"mail-from", "PANTHERA_MAIL_FROM", CFG_STRING, NULL, 0, 0, 0,
     "From header of every email, \"Name <address>\" or \"address\" (its address is also the "
     "envelope sender); unset: Panthera <no-reply@panthera.local>. A value that is not one "
     "stops the notifications service at start."},
};
const size_t cfg_n_vars = sizeof(cfg_vars) / sizeof(cfg_vars[0]);

static long find(const char *flag)
{
	for (size_t i = 0; i < cfg_n_vars; i++) {
		if (strcmp(cfg_vars[i].flag, flag) == 0)
			return (long)i;
	}
	return -1;
}

static int parse_bool(const char *s, int *out)
{
	static const char *const yes[] = {"true", "1", "yes", "on"};
	static const char *const no[] = {"false", "0", "no", "off"};
	for (int i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = 1;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = 0;
			return 0;
		}
	}
	return -1;
}

static rpc_status check_value(const cfg_var *v, const char *value, const char *from, char *err,
                              size_t errlen)
{
	if (v->type == CFG_INT) {
		char *end;
		errno = 0;
		long n = strtol(value, &end, 10);
		if (errno != 0 || end == value || *end != '\0' || n < v->min || n > v->max) {
			snprintf(err, errlen, "%s: %s must be an integer in %ld..%ld", from,
			         v->flag, v->min, v->max);
			return RPC_STATUS_INVALID_ARGUMENT;
		}
	} else if (v->type == CFG_BOOL) {
		int b;
		if (parse_bool(value, &b) != 0) {
			snprintf(err, errlen, "%s: %s must be true or false", from, v->flag);
			return RPC_STATUS_INVALID_ARGUMENT;
		}
	}
	return RPC_STATUS_OK;
}

static rpc_status set(cfg *c, size_t i, const char *value)
{
	char *copy = strdup(value);
	if (copy == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	free(c->values[i]);
	c->values[i] = copy;
	return RPC_STATUS_OK;
}

rpc_status cfg_load(cfg *c, int argc, char **argv, char *err, size_t errlen)
{
	c->help = 0;
	c->values = calloc(cfg_n_vars, sizeof(*c->values));
	if (c->values == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	err[0] = '\0';
	rpc_status st = RPC_STATUS_OK;
	for (size_t i = 0; i < cfg_n_vars && st == RPC_STATUS_OK; i++) {
		const cfg_var *v = &cfg_vars[i];
		const char *e = getenv(v->env);
		if (e != NULL) {
			if ((st = check_value(v, e, v->env, err, errlen)) == RPC_STATUS_OK)
				st = set(c, i, e);
		} else if (v->def != NULL) {
			st = set(c, i, v->def);
		}
	}
	for (int a = 1; a < argc && st == RPC_STATUS_OK; a++) {
		const char *arg = argv[a];
		if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
			c->help = 1;
			continue;
		}
		if (strcmp(arg, "--help-markdown") == 0) {
			c->help = 2;
			continue;
		}
		if (strncmp(arg, "--", 2) != 0) {
			snprintf(err, errlen,
			         "unexpected argument '%s' (settings are --name=value)", arg);
			return RPC_STATUS_INVALID_ARGUMENT;
		}
		char name[64];
		const char *eq = strchr(arg + 2, '=');
		size_t nl = eq ? (size_t)(eq - (arg + 2)) : strlen(arg + 2);
		if (nl == 0 || nl >= sizeof(name)) {
			snprintf(err, errlen, "malformed flag '%s'", arg);
			return RPC_STATUS_INVALID_ARGUMENT;
		}
		memcpy(name, arg + 2, nl);
		name[nl] = '\0';
		long i = find(name);
		if (i < 0) {
			snprintf(err, errlen, "unknown flag --%s (see --help)", name);
			return RPC_STATUS_INVALID_ARGUMENT;
		}
		const char *value = eq ? eq + 1 : (a + 1 < argc ? argv[++a] : NULL);
		if (value == NULL) {
			snprintf(err, errlen, "--%s needs a value", name);
			return RPC_STATUS_INVALID_ARGUMENT;
		}
		if ((st = check_value(&cfg_vars[i], value, "flag", err, errlen)) == RPC_STATUS_OK)
			st = set(c, (size_t)i, value);
	}
	return st;
}

const char *cfg_get(const cfg *c, const char *name)
{
	long i = find(name);
	return (i < 0 || c->values == NULL) ? NULL : c->values[i];
}

long cfg_get_int(const cfg *c, const char *name)
{
	const char *v = cfg_get(c, name);
	return v ? strtol(v, NULL, 10) : 0;
}

int cfg_get_bool(const cfg *c, const char *name)
{
	const char *v = cfg_get(c, name);
	int b = 0;
	if (v != NULL)
		parse_bool(v, &b);
	return b;
}

const char *cfg_db_url(const cfg *c, const char *service)
{
	char env[96];
	if (service != NULL && strlen(service) < 64) {
		snprintf(env, sizeof(env), "PANTHERA_%s_DB_URL", service);
		const char *v = getenv(env);
		if (v != NULL && v[0] != '\0')
			return v;
	}
	return cfg_get(c, "db-url");
}

void cfg_print_help(FILE *f, const char *program)
{
	fprintf(f,
	        "usage: %s [--name=value ...]\n\nSettings (flag, environment variable, default):\n",
	        program);
	for (size_t i = 0; i < cfg_n_vars; i++) {
		const cfg_var *v = &cfg_vars[i];
		fprintf(f, "  --%s, %s", v->flag, v->env);
		if (v->def != NULL && !v->secret)
			fprintf(f, " (default: %s)", v->def[0] ? v->def : "empty");
		fprintf(f, "\n      %s\n", v->help);
	}
}

void cfg_print_markdown(FILE *f)
{
	fprintf(f, "| variable | flag | default | meaning |\n|---|---|---|---|\n");
	for (size_t i = 0; i < cfg_n_vars; i++) {
		const cfg_var *v = &cfg_vars[i];
		fprintf(f, "| `%s` | `--%s` | %s%s%s | %s |\n", v->env, v->flag, v->def ? "`" : "",
		        v->def ? v->def : "unset", v->def ? "`" : "", v->help);
	}
}

void cfg_free(cfg *c)
{
	if (c == NULL || c->values == NULL)
		return;
	for (size_t i = 0; i < cfg_n_vars; i++)
		free(c->values[i]);
	free(c->values);
	c->values = NULL;
}
