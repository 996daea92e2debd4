/*
 * panthera - the command-line client of Panthera's RPC, like grpcurl for
 * our wire (docs/cli.md):
 *
 *   panthera list URL
 *   panthera describe URL SYMBOL
 *   panthera call URL METHOD [-d JSON] [-H 'key: value']...
 *   panthera health URL [SERVICE]
 *
 * with --timeout MS and, for tls+tcp:// URLs, --cacert/--cert/--key/
 * --servername. What a server serves comes from its reflection service
 * (panthera.reflection.v1.ServerReflection); JSON goes in and out through
 * the gateway's proto3 JSON mapping (gateway-rest/gw_json.h), which works
 * from protobuf-c descriptors: `call` therefore needs the message types
 * compiled in (cli_types.c), and says so when a server's method uses
 * others.
 *
 * Exit status: the RPC status code of the call (0 for OK); local failures
 * take the code that describes them (a bad argument or bad JSON 3
 * INVALID_ARGUMENT, a server that cannot be reached 14 UNAVAILABLE, a
 * method not served 12 UNIMPLEMENTED, a symbol not found 5 NOT_FOUND), and
 * a health check answering NOT_SERVING exits 14. Every failure prints one
 * line on stderr, "panthera: ...".
 */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grpc/health/v1/health.panthera.h"
#include "gw_json.h"
#include "panthera/reflection/v1/reflection.panthera.h"

#define CLI_MAX_HEADERS     32
#define CLI_DEFAULT_TIMEOUT 10000u
#define CLI_DEFAULT_CONNECT 3000u
#define CLI_MAX_DATA        (64u * 1024u * 1024u)

typedef struct cli {
	const char *command;
	const char *args[3]; /* positional arguments after the command */
	size_t n_args;
	const char *data; /* -d: JSON text, or @file, or @- */
	uint32_t timeout_ms;
	uint32_t connect_ms;
	rpc_metadata_entry md[CLI_MAX_HEADERS];
	char *md_store[CLI_MAX_HEADERS];
	size_t n_md;
	rpc_channel_opts chopts;
	int help;
} cli;

static int cli_fail(rpc_status code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int cli_fail(rpc_status code, const char *fmt, ...)
{
	va_list ap;
	fputs("panthera: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return (int)code;
}

/* ---- help ---- */

static const char usage_main[] =
    "usage: panthera COMMAND URL ... [options]\n"
    "\n"
    "A client of Panthera's RPC (nng URLs: tcp://, ipc://, tls+tcp://).\n"
    "\n"
    "commands:\n"
    "  list URL                      the services the server serves\n"
    "  describe URL SYMBOL           a service, method, message or enum in .proto syntax\n"
    "  call URL METHOD [-d JSON]     call a method, JSON in and out\n"
    "  health URL [SERVICE]          SERVING or NOT_SERVING\n"
    "\n"
    "options (any command):\n"
    "  --timeout MS                  deadline of the command's call (default 10000)\n"
    "  --connect-timeout MS          wait for a connection (default 3000)\n"
    "  -H, --header 'key: value'     request metadata (repeatable)\n"
    "  --cacert FILE                 CA of the server's certificate (tls+tcp://)\n"
    "  --cert FILE, --key FILE       client certificate and key (mutual TLS)\n"
    "  --servername NAME             name to check in the server's certificate\n"
    "  -h, --help                    help (of a command: panthera call --help)\n"
    "\n"
    "Exit status: the RPC status code (0 OK, 3 INVALID_ARGUMENT, 5 NOT_FOUND,\n"
    "12 UNIMPLEMENTED, 14 UNAVAILABLE, ...); local failures use the code that\n"
    "describes them. Errors are one line on stderr. See docs/cli.md.\n";

static const char usage_list[] =
    "usage: panthera list URL [options]\n"
    "\n"
    "Print the fully qualified names of the services the server at URL serves,\n"
    "one per line, sorted (its reflection service's ListServices).\n";

static const char usage_describe[] =
    "usage: panthera describe URL SYMBOL [options]\n"
    "\n"
    "Print SYMBOL as the server's reflection describes it, in .proto syntax:\n"
    "  pkg.Service                   its methods with their input and output types\n"
    "  pkg.Service.Method            (or pkg.Service/Method) the method, then its\n"
    "                                input and output messages with their fields\n"
    "  pkg.Message, pkg.Enum         the fields of a message, the values of an enum\n"
    "Works for any server, whatever types it uses.\n";

static const char usage_call[] =
    "usage: panthera call URL METHOD [-d JSON] [-H 'key: value']... [--timeout MS]\n"
    "\n"
    "Call METHOD (pkg.Service/Method or pkg.Service.Method) with the request\n"
    "given as JSON (-d '{...}', -d @FILE, -d @- for stdin; none: {}), and print\n"
    "the response as JSON on stdout. JSON follows the proto3 JSON mapping of the\n"
    "REST gateway (lowerCamelCase or proto names in, lowerCamelCase out, int64 as\n"
    "strings, enums by name, Timestamp in RFC 3339, unknown fields refused).\n"
    "\n"
    "The method is looked up through the server's reflection; its message types\n"
    "must be ones this binary was built with (every message of the platform's\n"
    "protos): a method of other types can be listed and described, not called.\n"
    "Exit status: the call's status code; an error prints\n"
    "'panthera: STATUS: message' on stderr.\n";

static const char usage_health[] =
    "usage: panthera health URL [SERVICE] [options]\n"
    "\n"
    "Ask the server's grpc.health.v1.Health about SERVICE (a fully qualified\n"
    "name), or about the whole server without one. Prints SERVING (exit 0) or\n"
    "NOT_SERVING (exit 14, UNAVAILABLE); a service not served exits 5 NOT_FOUND.\n";

static const char *usage_of(const char *command)
{
	if (command == NULL)
		return usage_main;
	if (strcmp(command, "list") == 0)
		return usage_list;
	if (strcmp(command, "describe") == 0)
		return usage_describe;
	if (strcmp(command, "call") == 0)
		return usage_call;
	if (strcmp(command, "health") == 0)
		return usage_health;
	return NULL;
}

/* ---- arguments ---- */

static int parse_uint32(const char *s, uint32_t *out)
{
	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	char *end = NULL;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v == 0 || v > UINT32_MAX)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

/* "Key: value" -> key "key", value "value". */
static int add_header(cli *c, const char *h)
{
	const char *colon = strchr(h, ':');
	if (colon == NULL || colon == h)
		return cli_fail(RPC_STATUS_INVALID_ARGUMENT, "-H '%s': expected 'key: value'", h);
	if (c->n_md >= CLI_MAX_HEADERS)
		return cli_fail(RPC_STATUS_INVALID_ARGUMENT, "more than %d -H options",
		                CLI_MAX_HEADERS);
	size_t klen = (size_t)(colon - h);
	const char *v = colon + 1;
	while (*v == ' ' || *v == '\t')
		v++;
	char *s = malloc(klen + 1 + strlen(v) + 1);
	if (s == NULL)
		return cli_fail(RPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	for (size_t i = 0; i < klen; i++)
		s[i] = (char)tolower((unsigned char)h[i]);
	s[klen] = '\0';
	strcpy(s + klen + 1, v);
	c->md_store[c->n_md] = s;
	c->md[c->n_md].key = s;
	c->md[c->n_md].value = s + klen + 1;
	c->n_md++;
	return 0;
}

static int parse_args(cli *c, int argc, char **argv)
{
	c->timeout_ms = CLI_DEFAULT_TIMEOUT;
	c->connect_ms = CLI_DEFAULT_CONNECT;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *next = i + 1 < argc ? argv[i + 1] : NULL;
		int takes = 1; /* the option takes the next argument */
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			c->help = 1;
			takes = 0;
		} else if (strcmp(a, "-d") == 0 || strcmp(a, "--data") == 0) {
			if (next != NULL)
				c->data = next;
		} else if (strcmp(a, "-H") == 0 || strcmp(a, "--header") == 0) {
			if (next != NULL && add_header(c, next) != 0)
				return RPC_STATUS_INVALID_ARGUMENT;
		} else if (strcmp(a, "--timeout") == 0) {
			if (next != NULL && parse_uint32(next, &c->timeout_ms) != 0)
				return cli_fail(RPC_STATUS_INVALID_ARGUMENT,
				                "--timeout '%s': expected milliseconds, 1 to %u",
				                next, UINT32_MAX);
		} else if (strcmp(a, "--connect-timeout") == 0) {
			if (next != NULL && parse_uint32(next, &c->connect_ms) != 0)
				return cli_fail(
				    RPC_STATUS_INVALID_ARGUMENT,
				    "--connect-timeout '%s': expected milliseconds, 1 to %u", next,
				    UINT32_MAX);
		} else if (strcmp(a, "--cacert") == 0) {
			c->chopts.tls_ca_file = next;
		} else if (strcmp(a, "--cert") == 0) {
			c->chopts.tls_cert_file = next;
		} else if (strcmp(a, "--key") == 0) {
			c->chopts.tls_key_file = next;
		} else if (strcmp(a, "--servername") == 0) {
			c->chopts.tls_server_name = next;
		} else if (a[0] == '-' && a[1] != '\0' && strcmp(a, "-") != 0) {
			return cli_fail(RPC_STATUS_INVALID_ARGUMENT,
			                "unknown option '%s' (panthera --help)", a);
		} else {
			takes = 0;
			if (c->command == NULL)
				c->command = a;
			else if (c->n_args < sizeof(c->args) / sizeof(c->args[0]))
				c->args[c->n_args++] = a;
			else
				return cli_fail(RPC_STATUS_INVALID_ARGUMENT,
				                "unexpected argument '%s' (panthera %s --help)", a,
				                c->command);
		}
		if (takes) {
			if (next == NULL)
				return cli_fail(RPC_STATUS_INVALID_ARGUMENT, "%s needs a value", a);
			i++;
		}
	}
	return 0;
}

/* ---- the channel ---- */

/* The URL schemes nng takes here; anything else is refused before dialing
 * with a clearer word than nng's. */
static int url_scheme_ok(const char *url)
{
	static const char *const schemes[] = {"tcp://",      "tcp4://",     "tcp6://",
	                                      "ipc://",      "inproc://",   "tls+tcp://",
	                                      "tls+tcp4://", "tls+tcp6://", "abstract://"};
	for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		if (strncmp(url, schemes[i], strlen(schemes[i])) == 0 && url[strlen(schemes[i])])
			return 1;
	}
	return 0;
}

static int open_channel(cli *c, const char *url, rpc_channel **ch)
{
	*ch = NULL;
	if (!url_scheme_ok(url))
		return cli_fail(RPC_STATUS_INVALID_ARGUMENT,
		                "bad URL '%s': expected tcp://HOST:PORT, ipc://PATH or "
		                "tls+tcp://HOST:PORT",
		                url);
	if (strncmp(url, "tls+", 4) == 0 && c->chopts.tls_ca_file == NULL)
		return cli_fail(RPC_STATUS_INVALID_ARGUMENT,
		                "%s: a tls+tcp:// URL needs --cacert FILE", url);
	c->chopts.default_timeout_ms = c->timeout_ms;
	c->chopts.connect_wait_ms = c->connect_ms;
	const char *urls[] = {url};
	rpc_status st = rpc_channel_open(ch, urls, 1, &c->chopts);
	if (st != RPC_STATUS_OK)
		return cli_fail(
		    st, "bad URL '%s': %s", url,
		    st == RPC_STATUS_INVALID_ARGUMENT
		        ? "not an address this client can dial (or a TLS file unreadable)"
		        : rpc_status_name(st));
	return 0;
}

static rpc_call_opts call_opts(const cli *c, uint32_t timeout_ms)
{
	rpc_call_opts o = {.timeout_ms = timeout_ms, .metadata = c->md, .n_metadata = c->n_md};
	return o;
}

/* One line for a failed call: "STATUS: message (reason R; field: why)". */
static int report_reply(rpc_status st, const rpc_reply *reply, const char *url)
{
	const char *msg = rpc_reply_message(reply);
	const char *reason = rpc_reply_error_reason(reply);
	char extra[512] = "";
	if (reason != NULL && reason[0] != '\0')
		snprintf(extra, sizeof(extra), " (reason %s)", reason);
	if (st == RPC_STATUS_UNAVAILABLE || st == RPC_STATUS_DEADLINE_EXCEEDED)
		return cli_fail(st, "%s: %s%s%s%s", rpc_status_name(st), url, msg[0] ? ": " : "",
		                msg, extra);
	return cli_fail(st, "%s: %s%s", rpc_status_name(st), msg[0] ? msg : "(no message)", extra);
}

/* ---- reflection ---- */

#define REFL(x) panthera_reflection_v1_server_reflection_##x

/* The descriptor set of `service` (NULL: of every service). *set to free
 * with google__protobuf__file_descriptor_set__free_unpacked(). On failure
 * the error is printed and its exit status returned. */
static int fetch_set(cli *c, rpc_channel *ch, const char *url, const char *service,
                     uint32_t timeout_ms, cli_fdset **set, rpc_status not_found_code)
{
	*set = NULL;
	Panthera__Reflection__V1__GetFileDescriptorSetRequest req =
	    PANTHERA__REFLECTION__V1__GET_FILE_DESCRIPTOR_SET_REQUEST__INIT;
	char *names[1] = {(char *)service};
	if (service != NULL) {
		req.services = names;
		req.n_services = 1;
	}
	rpc_call_opts o = call_opts(c, timeout_ms);
	const Panthera__Reflection__V1__GetFileDescriptorSetResponse *resp = NULL;
	rpc_reply *reply = NULL;
	rpc_status st = REFL(get_file_descriptor_set)(ch, &req, &o, &resp, &reply);
	int rc = 0;
	if (st == RPC_STATUS_NOT_FOUND && service != NULL) {
		rc = cli_fail(not_found_code, "service %s is not served at %s (panthera list %s)",
		              service, url, url);
	} else if (st == RPC_STATUS_UNIMPLEMENTED) {
		rc = cli_fail(st, "%s does not answer reflection (not a Panthera server?)", url);
	} else if (st != RPC_STATUS_OK) {
		rc = report_reply(st, reply, url);
	} else {
		*set = google__protobuf__file_descriptor_set__unpack(
		    NULL, resp->file_descriptor_set.len, resp->file_descriptor_set.data);
		if (*set == NULL)
			rc = cli_fail(RPC_STATUS_DATA_LOSS,
			              "%s: the reflection answer is not a FileDescriptorSet", url);
	}
	rpc_reply_free(reply);
	return rc;
}

/* ---- commands ---- */

static int cmd_list(cli *c, rpc_channel *ch, const char *url)
{
	Panthera__Reflection__V1__ListServicesRequest req =
	    PANTHERA__REFLECTION__V1__LIST_SERVICES_REQUEST__INIT;
	rpc_call_opts o = call_opts(c, c->timeout_ms);
	const Panthera__Reflection__V1__ListServicesResponse *resp = NULL;
	rpc_reply *reply = NULL;
	rpc_status st = REFL(list_services)(ch, &req, &o, &resp, &reply);
	int rc;
	if (st == RPC_STATUS_UNIMPLEMENTED) {
		rc = cli_fail(st, "%s does not answer reflection (not a Panthera server?)", url);
	} else if (st != RPC_STATUS_OK) {
		rc = report_reply(st, reply, url);
	} else {
		for (size_t i = 0; i < resp->n_services; i++)
			printf("%s\n", resp->services[i]);
		rc = 0;
	}
	rpc_reply_free(reply);
	return rc;
}

static int cmd_describe(cli *c, rpc_channel *ch, const char *url, const char *symbol)
{
	cli_fdset *set = NULL;
	int rc = fetch_set(c, ch, url, NULL, c->timeout_ms, &set, RPC_STATUS_NOT_FOUND);
	if (rc != 0)
		return rc;
	cli_symbol sym;
	if (cli_find_symbol(set, symbol, &sym))
		cli_print_symbol(stdout, set, &sym);
	else
		rc = cli_fail(RPC_STATUS_NOT_FOUND,
		              "%s: no service, method, message or enum of that name at %s "
		              "(panthera list %s)",
		              symbol, url, url);
	google__protobuf__file_descriptor_set__free_unpacked(set, NULL);
	return rc;
}

/* A ProtobufCAllocator whose blocks are freed together: gw_json_decode()
 * never frees what it allocates. Each block is preceded by a link. */
typedef struct chain_block {
	struct chain_block *next;
	max_align_t align[];
} chain_block;

static void *chain_alloc(void *data, size_t size)
{
	chain_block **head = data;
	if (size > SIZE_MAX - sizeof(chain_block))
		return NULL;
	chain_block *b = malloc(sizeof(chain_block) + size);
	if (b == NULL)
		return NULL;
	b->next = *head;
	*head = b;
	return b->align;
}

static void chain_free(void *data, void *p)
{
	(void)data;
	(void)p; /* freed with the chain */
}

static void chain_release(chain_block *head)
{
	while (head != NULL) {
		chain_block *next = head->next;
		free(head);
		head = next;
	}
}

/* The text of -d: itself, or a file's (@FILE), or stdin's (@-). */
static int read_data(const char *data, char **out, size_t *len)
{
	*out = NULL;
	*len = 0;
	if (data == NULL)
		return 0;
	if (data[0] != '@') {
		*len = strlen(data);
		*out = strdup(data);
		return *out == NULL ? cli_fail(RPC_STATUS_RESOURCE_EXHAUSTED, "out of memory") : 0;
	}
	const char *path = data + 1;
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	if (f == NULL)
		return cli_fail(RPC_STATUS_INVALID_ARGUMENT, "-d %s: %s", data, strerror(errno));
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	int rc = 0;
	while (buf != NULL) {
		if (n == cap) {
			char *p = cap < CLI_MAX_DATA ? realloc(buf, cap * 2) : NULL;
			if (p == NULL) {
				rc = cli_fail(RPC_STATUS_RESOURCE_EXHAUSTED, "-d %s: over %u bytes",
				              data, CLI_MAX_DATA);
				break;
			}
			buf = p;
			cap *= 2;
		}
		size_t r = fread(buf + n, 1, cap - n, f);
		n += r;
		if (r == 0) {
			if (ferror(f))
				rc = cli_fail(RPC_STATUS_INVALID_ARGUMENT, "-d %s: read error",
				              data);
			break;
		}
	}
	if (buf == NULL)
		rc = cli_fail(RPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	if (f != stdin)
		fclose(f);
	if (rc != 0) {
		free(buf);
		return rc;
	}
	*out = buf;
	*len = n;
	return 0;
}

static int cmd_call(cli *c, rpc_channel *ch, const char *url, const char *method_name)
{
	/* "pkg.Service/Method" or "pkg.Service.Method" */
	const char *name = method_name;
	while (*name == '/')
		name++;
	char service[512];
	const char *split = strrchr(name, '/');
	if (split == NULL)
		split = strrchr(name, '.');
	if (split == NULL || split == name || split[1] == '\0' ||
	    (size_t)(split - name) >= sizeof(service))
		return cli_fail(RPC_STATUS_INVALID_ARGUMENT,
		                "method '%s': expected pkg.Service/Method or pkg.Service.Method",
		                method_name);
	memcpy(service, name, (size_t)(split - name));
	service[split - name] = '\0';
	const char *short_name = split + 1;

	char *json = NULL;
	size_t json_len = 0;
	int rc = read_data(c->data, &json, &json_len);
	if (rc != 0)
		return rc;

	cli_fdset *set = NULL;
	gw_json_schema *schema = NULL;
	chain_block *chain = NULL;
	rpc_reply *reply = NULL;
	gw_json_buf out;
	gw_json_buf_init(&out, 0);
	char path[1024];

	/* The lookup is not the call --timeout is about: it may take as long as
	 * connecting may, so that a short --timeout applies to the method. */
	uint32_t lookup_ms = c->timeout_ms > c->connect_ms ? c->timeout_ms : c->connect_ms;
	rc = fetch_set(c, ch, url, service, lookup_ms, &set, RPC_STATUS_UNIMPLEMENTED);
	if (rc != 0)
		goto out;
	cli_symbol sym;
	if (!cli_find_symbol(set, service, &sym) || sym.service == NULL) {
		rc = cli_fail(RPC_STATUS_UNIMPLEMENTED, "service %s is not served at %s", service,
		              url);
		goto out;
	}
	const cli_method *m = NULL;
	for (size_t i = 0; i < sym.service->n_method; i++) {
		if (sym.service->method[i]->name &&
		    strcmp(sym.service->method[i]->name, short_name) == 0)
			m = sym.service->method[i];
	}
	if (m == NULL) {
		rc = cli_fail(RPC_STATUS_UNIMPLEMENTED,
		              "%s has no method %s (panthera describe %s %s)", service, short_name,
		              url, service);
		goto out;
	}
	const char *in_name = m->input_type && m->input_type[0] == '.' ? m->input_type + 1 : "";
	const char *out_name = m->output_type && m->output_type[0] == '.' ? m->output_type + 1 : "";
	const ProtobufCMessageDescriptor *in = cli_known_message(in_name);
	const ProtobufCMessageDescriptor *outd = cli_known_message(out_name);
	if (in == NULL || outd == NULL) {
		rc = cli_fail(RPC_STATUS_UNIMPLEMENTED,
		              "%s.%s takes %s and returns %s: %s is not a type this panthera was "
		              "built with, so it can be described but not called",
		              service, short_name, in_name, out_name,
		              in == NULL ? in_name : out_name);
		goto out;
	}
	snprintf(path, sizeof(path), "/%s/%s", service, short_name);
	rpc_method_desc method = {.path = path, .name = short_name, .input = in, .output = outd};

	gw_json_error jerr;
	memset(&jerr, 0, sizeof(jerr));
	const ProtobufCMessageDescriptor *roots[2] = {in, outd};
	rpc_status st = gw_json_schema_new(&schema, roots, 2, NULL, &jerr);
	if (st != RPC_STATUS_OK) {
		rc = cli_fail(st, "%s.%s: its types cannot be written as JSON: %s%s%s", service,
		              short_name, jerr.field, jerr.field[0] ? ": " : "", jerr.description);
		goto out;
	}
	ProtobufCAllocator alloc = {chain_alloc, chain_free, &chain};
	ProtobufCMessage *req = chain_alloc(&chain, in->sizeof_message);
	if (req == NULL) {
		rc = cli_fail(RPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		goto out;
	}
	protobuf_c_message_init(in, req);
	st = gw_json_decode(schema, req, NULL, json ? json : "", json_len, &alloc, NULL, &jerr);
	if (st != RPC_STATUS_OK) {
		if (jerr.field[0] != '\0')
			rc = cli_fail(st, "bad JSON for %s: field %s: %s", in_name, jerr.field,
			              jerr.description);
		else
			rc = cli_fail(st, "bad JSON for %s: %s", in_name, jerr.description);
		goto out;
	}
	rpc_call_opts o = call_opts(c, c->timeout_ms);
	st = rpc_channel_call(ch, &method, req, &o, &reply);
	if (st != RPC_STATUS_OK) {
		rc = report_reply(st, reply, url);
		goto out;
	}
	st = gw_json_encode(schema, rpc_reply_payload(reply), NULL, GW_JSON_EMIT_UNPOPULATED, &out,
	                    &jerr);
	if (st != RPC_STATUS_OK) {
		rc = cli_fail(st, "the response cannot be written as JSON: %s", jerr.description);
		goto out;
	}
	fwrite(out.data, 1, out.len, stdout);
	fputc('\n', stdout);
	rc = 0;
out:
	gw_json_buf_free(&out);
	rpc_reply_free(reply);
	gw_json_schema_free(schema);
	chain_release(chain);
	if (set != NULL)
		google__protobuf__file_descriptor_set__free_unpacked(set, NULL);
	free(json);
	return rc;
}

static int cmd_health(cli *c, rpc_channel *ch, const char *url, const char *service)
{
	Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
	req.service = (char *)(service ? service : "");
	rpc_call_opts o = call_opts(c, c->timeout_ms);
	const Grpc__Health__V1__HealthCheckResponse *resp = NULL;
	rpc_reply *reply = NULL;
	rpc_status st = grpc_health_v1_health_check(ch, &req, &o, &resp, &reply);
	int rc;
	if (st == RPC_STATUS_NOT_FOUND) {
		rc = cli_fail(st, "service %s is not served at %s", req.service, url);
	} else if (st != RPC_STATUS_OK) {
		rc = report_reply(st, reply, url);
	} else if (resp->status ==
	           GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING) {
		printf("SERVING\n");
		rc = 0;
	} else {
		printf("NOT_SERVING\n");
		rc = RPC_STATUS_UNAVAILABLE;
	}
	rpc_reply_free(reply);
	return rc;
}

int main(int argc, char **argv)
{
	cli c;
	memset(&c, 0, sizeof(c));
	int rc = parse_args(&c, argc, argv);
	rpc_channel *ch = NULL;
	if (rc != 0)
		goto out;
	const char *usage = usage_of(c.command);
	if (c.command != NULL && usage == NULL) {
		rc =
		    cli_fail(RPC_STATUS_INVALID_ARGUMENT,
		             "unknown command '%s' (list, describe, call, health; panthera --help)",
		             c.command);
		goto out;
	}
	if (c.help) {
		fputs(usage, stdout);
		goto out;
	}
	if (c.command == NULL) {
		rc = cli_fail(RPC_STATUS_INVALID_ARGUMENT,
		              "no command: list, describe, call or health (panthera --help)");
		goto out;
	}
	size_t need = strcmp(c.command, "list") == 0 || strcmp(c.command, "health") == 0 ? 1 : 2;
	size_t most = strcmp(c.command, "health") == 0 ? 2 : need;
	if (c.n_args < need || c.n_args > most) {
		rc = cli_fail(RPC_STATUS_INVALID_ARGUMENT, "%s: expected %s (panthera %s --help)",
		              c.command,
		              strcmp(c.command, "list") == 0       ? "URL"
		              : strcmp(c.command, "health") == 0   ? "URL [SERVICE]"
		              : strcmp(c.command, "describe") == 0 ? "URL SYMBOL"
		                                                   : "URL METHOD",
		              c.command);
		goto out;
	}
	if (c.data != NULL && strcmp(c.command, "call") != 0) {
		rc = cli_fail(RPC_STATUS_INVALID_ARGUMENT, "-d is for call only");
		goto out;
	}
	rc = open_channel(&c, c.args[0], &ch);
	if (rc != 0)
		goto out;
	if (strcmp(c.command, "list") == 0)
		rc = cmd_list(&c, ch, c.args[0]);
	else if (strcmp(c.command, "describe") == 0)
		rc = cmd_describe(&c, ch, c.args[0], c.args[1]);
	else if (strcmp(c.command, "call") == 0)
		rc = cmd_call(&c, ch, c.args[0], c.args[1]);
	else
		rc = cmd_health(&c, ch, c.args[0], c.n_args > 1 ? c.args[1] : NULL);
out:
	rpc_channel_close(ch);
	for (size_t i = 0; i < c.n_md; i++)
		free(c.md_store[i]);
	if (fflush(stdout) != 0 && rc == 0)
		rc = cli_fail(RPC_STATUS_INTERNAL, "writing the output: %s", strerror(errno));
	return rc;
}
