/*
 * test_codegen.c - protoc-gen-panthera, end to end.
 *
 * Runs the real protoc with the plugin over the test protos of
 * tests/codegen/proto and checks: the output equals the golden files byte
 * for byte; two runs give the same bytes; every proto of tests/codegen/errors
 * fails generation with the message its first line announces; garbage on the
 * plugin's stdin is an error, not a crash. Then it links the code generated
 * from the test protos (GEN_OUT) with test doubles of the runtime and checks
 * what that code does: the trampolines call the right typed handler, client
 * stubs pass the right method to the channel, the route table holds what
 * the annotations say.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "google/protobuf/descriptor.pb-c.h"
#include "panthera/rpc.h"
#include "panthera/rpc_route.h"
#include "testapi_routes.h"
#include "shop/v1/shop.panthera.h"

#ifndef PLUGIN_PATH
#error "PLUGIN_PATH must name the built plugin"
#endif

#define TEST_WKT                                                                          \
	"google/protobuf/timestamp.proto google/protobuf/duration.proto "                 \
	"google/protobuf/field_mask.proto google/protobuf/wrappers.proto "                \
	"google/protobuf/empty.proto google/protobuf/struct.proto google/api/http.proto " \
	"google/api/annotations.proto panthera/api/options.proto google/protobuf/descriptor.proto"

/* ---- helpers ---- */

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap + 1);
	while (buf != NULL) {
		size_t r = fread(buf + n, 1, cap - n, f);
		n += r;
		if (n < cap)
			break;
		char *p = realloc(buf, cap * 2 + 1);
		if (p == NULL) {
			free(buf);
			buf = NULL;
			break;
		}
		buf = p;
		cap *= 2;
	}
	fclose(f);
	if (buf != NULL) {
		buf[n] = '\0';
		if (len)
			*len = n;
	}
	return buf;
}

/* Run a shell command; returns its exit status (-1 when it did not exit). */
static int run(const char *cmd)
{
	int st = system(cmd);
	if (st == -1 || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

static char *make_tmpdir(void)
{
	char tmpl[] = "/tmp/pgen-test-XXXXXX";
	char *d = mkdtemp(tmpl);
	assert_non_null(d);
	return strdup(d);
}

static void remove_tree(const char *dir)
{
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(run(cmd), 0);
}

/* The list of protos of the golden set, relative to tests/codegen/proto. */
static char *golden_protos(void)
{
	char cmd[1024];
	snprintf(
	    cmd, sizeof(cmd),
	    "cd %s/tests/codegen/proto && find . -name '*.proto' | sed 's|^\\./||' | sort | tr '\\n' ' '",
	    SRC_DIR);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	static char buf[4096];
	size_t n = fread(buf, 1, sizeof(buf) - 1, p);
	buf[n] = '\0';
	assert_int_equal(pclose(p), 0);
	assert_true(n > 0);
	return buf;
}

/* Generate the golden set into `out`; returns protoc's exit status. */
static int generate_into(const char *out)
{
	char cmd[8192];
	snprintf(cmd, sizeof(cmd),
	         "cd %s && protoc -Itests/codegen/proto -Iproto -I/usr/include "
	         "--plugin=protoc-gen-panthera=%s --c_out=%s --panthera_out=%s "
	         "--panthera_opt=name=testapi %s %s",
	         SRC_DIR, PLUGIN_PATH, out, out, golden_protos(), TEST_WKT);
	return run(cmd);
}

/* ---- golden files and determinism ---- */

static void test_output_matches_golden_files(void **state)
{
	(void)state;
	char *out = make_tmpdir();
	assert_int_equal(generate_into(out), 0);

	/* Every golden file exists in the output with the same bytes. */
	char cmd[1024];
	snprintf(cmd, sizeof(cmd),
	         "cd %s/tests/codegen/golden && find . -type f ! -name .clang-format | sort",
	         SRC_DIR);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	char line[1024];
	int n_files = 0, n_bad = 0;
	while (fgets(line, sizeof(line), p) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		char gpath[2048], opath[2048];
		snprintf(gpath, sizeof(gpath), "%s/tests/codegen/golden/%s", SRC_DIR, line + 2);
		snprintf(opath, sizeof(opath), "%s/%s", out, line + 2);
		size_t glen = 0, olen = 0;
		char *g = read_file(gpath, &glen);
		char *o = read_file(opath, &olen);
		assert_non_null(g);
		if (o == NULL || glen != olen || memcmp(g, o, glen) != 0) {
			print_error(
			    "golden mismatch: %s (see: diff -u %s %s; accept with make golden)\n",
			    line + 2, gpath, opath);
			n_bad++;
		}
		free(g);
		free(o);
		n_files++;
	}
	assert_int_equal(pclose(p), 0);
	/* ... and the plugin made no file the golden set lacks. */
	snprintf(
	    cmd, sizeof(cmd),
	    "cd %s && find . -name '*.panthera.[ch]' -o -name 'testapi*' | sort | "
	    "while read -r f; do [ -f %s/tests/codegen/golden/$f ] || { echo \"extra: $f\" >&2; exit 1; }; done",
	    out, SRC_DIR);
	assert_int_equal(run(cmd), 0);
	assert_int_equal(n_bad, 0);
	assert_true(n_files >= 6); /* stubs of 2+ files, routes .h/.c, openapi */
	remove_tree(out);
	free(out);
}

static void test_output_is_deterministic(void **state)
{
	(void)state;
	char *a = make_tmpdir(), *b = make_tmpdir();
	assert_int_equal(generate_into(a), 0);
	assert_int_equal(generate_into(b), 0);
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "diff -r -q %s %s", a, b);
	assert_int_equal(run(cmd), 0);
	remove_tree(a);
	remove_tree(b);
	free(a);
	free(b);
}

/* ---- error cases ---- */

/* The expected message of an error proto: its first line, "// expect: X". */
static char *expected_message(const char *path)
{
	char *text = read_file(path, NULL);
	assert_non_null(text);
	const char *tag = "// expect: ";
	char *r = NULL;
	if (strncmp(text, tag, strlen(tag)) == 0) {
		char *start = text + strlen(tag);
		start[strcspn(start, "\n")] = '\0';
		r = strdup(start);
	}
	free(text);
	return r;
}

static void test_every_error_case_fails_with_its_message(void **state)
{
	(void)state;
	char dir[1024];
	snprintf(dir, sizeof(dir), "%s/tests/codegen/errors", SRC_DIR);
	DIR *d = opendir(dir);
	assert_non_null(d);
	char *out = make_tmpdir();
	int n_cases = 0, n_bad = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		size_t n = strlen(e->d_name);
		if (n < 7 || strcmp(e->d_name + n - 6, ".proto") != 0)
			continue;
		if (strcmp(e->d_name, "collide_b.proto") == 0)
			continue; /* the second file of collide_a's case */
		char path[2048];
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		char *want = expected_message(path);
		if (want == NULL) {
			print_error("%s: first line is not '// expect: <message>'\n", e->d_name);
			n_bad++;
			continue;
		}
		const char *extra =
		    strcmp(e->d_name, "collide_a.proto") == 0 ? "collide_b.proto" : "";
		char cmd[4096], errfile[1100];
		snprintf(errfile, sizeof(errfile), "%s/stderr.txt", out);
		snprintf(
		    cmd, sizeof(cmd),
		    "cd %s && protoc -I. -I%s/proto -I/usr/include --plugin=protoc-gen-panthera=%s "
		    "--panthera_out=%s %s %s 2>%s >/dev/null",
		    dir, SRC_DIR, PLUGIN_PATH, out, e->d_name, extra, errfile);
		int st = run(cmd);
		char *err = read_file(errfile, NULL);
		if (st == 0 || err == NULL || strstr(err, want) == NULL) {
			print_error("%s: want failure with \"%s\", got exit %d and: %s\n",
			            e->d_name, want, st, err ? err : "(no stderr)");
			n_bad++;
		}
		free(err);
		free(want);
		n_cases++;
	}
	closedir(d);
	remove_tree(out);
	free(out);
	assert_int_equal(n_bad, 0);
	assert_true(n_cases >= 15);
}

static void test_plugin_rejects_bytes_that_are_not_a_request(void **state)
{
	(void)state;
	char cmd[1024];
	/* 0xff... is a varint that never ends: undecodable. */
	snprintf(
	    cmd, sizeof(cmd),
	    "printf '\\377\\377\\377\\377\\377\\377\\377\\377\\377\\377\\377' | %s >/dev/null 2>&1",
	    PLUGIN_PATH);
	assert_int_equal(run(cmd), 1);
	/* a length-delimited field that claims more bytes than there are */
	snprintf(cmd, sizeof(cmd), "printf '\\172\\177abc' | %s >/dev/null 2>&1", PLUGIN_PATH);
	assert_int_equal(run(cmd), 1);
	/* random bytes: an error or an empty answer, never a crash (exit > 1) */
	snprintf(cmd, sizeof(cmd), "head -c 4096 /dev/urandom | %s >/dev/null 2>&1; test $? -le 1",
	         PLUGIN_PATH);
	assert_int_equal(run(cmd), 0);
	/* an empty request is a valid one that asks for nothing */
	snprintf(cmd, sizeof(cmd), "%s </dev/null >/dev/null", PLUGIN_PATH);
	assert_int_equal(run(cmd), 0);
}

static void test_plugin_rejects_unknown_parameter(void **state)
{
	(void)state;
	char cmd[2048];
	snprintf(cmd, sizeof(cmd),
	         "cd %s && protoc -Itests/codegen/proto -Iproto -I/usr/include "
	         "--plugin=protoc-gen-panthera=%s --panthera_out=/tmp --panthera_opt=colour=blue "
	         "shop/v1/shop.proto 2>&1 | grep -q \"unknown parameter 'colour'\"",
	         SRC_DIR, PLUGIN_PATH);
	assert_int_equal(run(cmd), 0);
}

/* ---- the generated code, against test doubles of the runtime ---- */

static struct {
	const rpc_method_desc *method;
	const ProtobufCMessage *req;
	const rpc_call_opts *opts;
	const rpc_service_desc *svc;
	const void *handlers;
	void *user;
	int async_calls;
	ProtobufCMessage *payload;
} seen;

rpc_status rpc_server_add_service(rpc_server *srv, const rpc_service_desc *svc,
                                  const void *handlers, void *user)
{
	(void)srv;
	seen.svc = svc;
	seen.handlers = handlers;
	seen.user = user;
	return RPC_STATUS_OK;
}

rpc_status rpc_channel_call(rpc_channel *ch, const rpc_method_desc *method,
                            const ProtobufCMessage *req, const rpc_call_opts *opts,
                            rpc_reply **reply)
{
	(void)ch;
	seen.method = method;
	seen.req = req;
	seen.opts = opts;
	*reply = (rpc_reply *)&seen; /* any non-NULL token: rpc_reply_payload below reads seen */
	return seen.payload ? RPC_STATUS_OK : RPC_STATUS_NOT_FOUND;
}

rpc_status rpc_channel_call_async(rpc_channel *ch, const rpc_method_desc *method,
                                  const ProtobufCMessage *req, const rpc_call_opts *opts,
                                  rpc_reply_fn done, void *arg)
{
	(void)ch;
	(void)done;
	(void)arg;
	seen.method = method;
	seen.req = req;
	seen.opts = opts;
	seen.async_calls++;
	return RPC_STATUS_OK;
}

const ProtobufCMessage *rpc_reply_payload(const rpc_reply *reply)
{
	return reply == (const rpc_reply *)&seen ? seen.payload : NULL;
}

static const rpc_http_route *route_for(const char *http_method, const char *tmpl)
{
	for (size_t i = 0; i < testapi_routes.n_routes; i++) {
		const rpc_http_route *r = &testapi_routes.routes[i];
		if (strcmp(r->http_method, http_method) == 0 && strcmp(r->path_template, tmpl) == 0)
			return r;
	}
	fail_msg("no route %s %s in the generated table", http_method, tmpl);
	return NULL;
}

static int has_query_field(const rpc_http_route *r, const char *name)
{
	for (size_t i = 0; i < r->n_query_fields; i++) {
		if (strcmp(r->query_fields[i], name) == 0)
			return 1;
	}
	return 0;
}

#define SHOP(x)     test_shop_v1_shop_service_##x
#define SHOP_IDX(x) TEST_SHOP_V1_SHOP_SERVICE_##x

static void test_route_table_has_every_binding(void **state)
{
	(void)state;
	/* 11 ShopService bindings (GetBook twice), 5 OrderService (GetAsset
	 * twice), and StockService's; never the services without HTTP. */
	assert_true(testapi_routes.n_routes >= 16);
	for (size_t i = 0; i < testapi_routes.n_services; i++)
		assert_string_not_equal(testapi_routes.services[i]->name,
		                        "test.inventory.v2.StockMaintenanceService");
	for (size_t i = 0; i < testapi_routes.n_routes; i++)
		assert_ptr_not_equal(testapi_routes.routes[i].method,
		                     &SHOP(methods)[SHOP_IDX(EXPORT_BOOKS)]);
	assert_int_equal(SHOP(desc).n_methods, SHOP_IDX(METHOD_COUNT));
	assert_string_equal(SHOP(desc).name, "test.shop.v1.ShopService");
	assert_string_equal(SHOP(desc).proto_file, "shop/v1/shop.proto");
	assert_string_equal(SHOP(methods)[SHOP_IDX(GET_BOOK)].path,
	                    "/test.shop.v1.ShopService/GetBook");
	assert_ptr_equal(SHOP(methods)[SHOP_IDX(GET_BOOK)].input,
	                 &test__shop__v1__get_book_request__descriptor);
	assert_ptr_equal(SHOP(methods)[SHOP_IDX(GET_BOOK)].output,
	                 &test__shop__v1__book__descriptor);
}

/* Each service descriptor carries the serialized FileDescriptorProtos of its
 * file and of everything the file imports, imports first, options intact. */
static void test_service_desc_embeds_file_descriptors(void **state)
{
	(void)state;
	const rpc_service_desc *d = &SHOP(desc);
	assert_true(d->n_files >= 6);
	assert_string_equal(d->files[d->n_files - 1].name, "shop/v1/shop.proto");
	Google__Protobuf__FileDescriptorProto **fp = calloc(d->n_files, sizeof(*fp));
	assert_non_null(fp);
	int saw_types = 0, saw_descriptor = 0;
	for (size_t i = 0; i < d->n_files; i++) {
		fp[i] = google__protobuf__file_descriptor_proto__unpack(NULL, d->files[i].len,
		                                                        d->files[i].data);
		assert_non_null(fp[i]);
		assert_string_equal(fp[i]->name, d->files[i].name);
		assert_null(fp[i]->source_code_info);
		saw_types |= strcmp(fp[i]->name, "shop/v1/types.proto") == 0;
		saw_descriptor |= strcmp(fp[i]->name, "google/protobuf/descriptor.proto") == 0;
		for (size_t k = 0; k < fp[i]->n_dependency; k++) {
			int earlier = 0;
			for (size_t j = 0; j < i; j++)
				earlier |= strcmp(fp[j]->name, fp[i]->dependency[k]) == 0;
			if (!earlier)
				fail_msg("%s imports %s, which does not come before it",
				         fp[i]->name, fp[i]->dependency[k]);
		}
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(fp[j]->name, fp[i]->name);
	}
	assert_true(saw_types);
	assert_true(saw_descriptor);
	const Google__Protobuf__FileDescriptorProto *shop = fp[d->n_files - 1];
	const Google__Protobuf__ServiceDescriptorProto *svc = NULL;
	for (size_t i = 0; i < shop->n_service; i++) {
		if (strcmp(shop->service[i]->name, "ShopService") == 0)
			svc = shop->service[i];
	}
	assert_non_null(svc);
	assert_int_equal(svc->n_method, d->n_methods);
	const Google__Protobuf__MethodDescriptorProto *get = svc->method[SHOP_IDX(GET_BOOK)];
	assert_string_equal(get->name, "GetBook");
	assert_string_equal(get->input_type, ".test.shop.v1.GetBookRequest");
	/* the google.api.http option travels as an extension (an unknown field) */
	assert_non_null(get->options);
	assert_true(get->options->base.n_unknown_fields > 0);
	for (size_t i = 0; i < d->n_files; i++)
		google__protobuf__file_descriptor_proto__free_unpacked(fp[i], NULL);
	free(fp);
}

static void test_route_multi_segment_variable(void **state)
{
	(void)state;
	const rpc_http_route *r = route_for("GET", "/v1/{name=shelves/*/books/*}");
	assert_int_equal(r->n_segments, 5);
	assert_string_equal(r->segments[0].literal, "v1");
	assert_int_equal(r->segments[1].kind, RPC_SEGMENT_LITERAL);
	assert_string_equal(r->segments[1].literal, "shelves");
	assert_int_equal(r->segments[2].kind, RPC_SEGMENT_ANY);
	assert_string_equal(r->segments[3].literal, "books");
	assert_int_equal(r->segments[4].kind, RPC_SEGMENT_ANY);
	assert_int_equal(r->n_vars, 1);
	assert_string_equal(r->vars[0].field_path, "name");
	assert_int_equal(r->vars[0].first, 1);
	assert_int_equal(r->vars[0].last, 5);
	assert_null(r->verb);
	assert_null(r->body_field);
	assert_true(has_query_field(r, "book_id"));
	assert_true(has_query_field(r, "read_mask"));
	assert_false(has_query_field(r, "name"));
	assert_int_equal(r->access, RPC_ACCESS_PUBLIC);
	assert_int_equal(r->cache_ttl_seconds, 300);
	assert_int_equal(r->success_status, 200);
	/* the additional binding calls the same method */
	assert_ptr_equal(route_for("GET", "/v1/books/{book_id}")->method, r->method);
	assert_true(r->method->flags & RPC_METHOD_NO_SIDE_EFFECTS);
}

static void test_route_body_field_and_query(void **state)
{
	(void)state;
	const rpc_http_route *r = route_for("POST", "/v1/shelves/{shelf_id}/books");
	assert_string_equal(r->body_field, "book");
	assert_int_equal(r->n_query_fields, 1);
	assert_string_equal(r->query_fields[0], "request_id");
	assert_int_equal(r->success_status, 201);
	assert_int_equal(r->access, RPC_ACCESS_USER);

	r = route_for("PATCH", "/v1/books/{book.id}");
	assert_string_equal(r->vars[0].field_path, "book.id");
	assert_string_equal(r->body_field, "book");
	assert_true(has_query_field(r, "update_mask"));
	assert_int_equal(r->access, RPC_ACCESS_OWNER);
	assert_null(r->owner_field);

	r = route_for("PUT", "/v1/books/{book_id}");
	assert_string_equal(r->body_field, "*");
	assert_int_equal(r->n_query_fields, 0);
	assert_int_equal(r->method->flags, RPC_METHOD_IDEMPOTENT);
}

static void test_route_policies_statuses_and_verbs(void **state)
{
	(void)state;
	const rpc_http_route *r = route_for("DELETE", "/v1/books/{book_id}");
	assert_int_equal(r->access, RPC_ACCESS_ADMIN);
	assert_int_equal(r->success_status, 204);
	assert_true(has_query_field(r, "force"));

	r = route_for("POST", "/v1/books/{book_id}:archive");
	assert_string_equal(r->verb, "archive");
	assert_int_equal(r->n_segments, 3);
	assert_true(r->method->flags & RPC_METHOD_DEPRECATED);
	assert_int_equal(r->access, RPC_ACCESS_USER); /* no access option: USER */

	r = route_for("GET", "/v1/users/{user_id}/shelves/{shelf_id}/books");
	assert_string_equal(r->owner_field, "user_id");
	assert_string_equal(r->response_body_field, "books");

	r = route_for("POST", "/v1/catalog:reindex");
	assert_int_equal(r->success_status, 202);

	r = route_for("HEAD", "/v1/books/{book_id}");
	assert_true(r->method->flags & RPC_METHOD_IDEMPOTENT);

	r = route_for("GET", "/v1/static/**");
	assert_int_equal(r->segments[r->n_segments - 1].kind, RPC_SEGMENT_ANY_REST);
	r = route_for("GET", "/v1/assets/{path=**}");
	assert_int_equal(r->vars[0].last - r->vars[0].first, 1);
	assert_int_equal(r->segments[r->vars[0].first].kind, RPC_SEGMENT_ANY_REST);
}

static struct {
	const Test__Shop__V1__GetBookRequest *req;
	Test__Shop__V1__Book *resp;
	void *user;
	rpc_call *call;
} handled;

static rpc_status handle_get_book(rpc_call *call, const Test__Shop__V1__GetBookRequest *req,
                                  Test__Shop__V1__Book *resp, void *user)
{
	handled.call = call;
	handled.req = req;
	handled.resp = resp;
	handled.user = user;
	return RPC_STATUS_PERMISSION_DENIED;
}

static void test_trampoline_calls_the_typed_handler(void **state)
{
	(void)state;
	SHOP(handlers) h = {.get_book = handle_get_book};
	int user = 7;
	Test__Shop__V1__GetBookRequest req = TEST__SHOP__V1__GET_BOOK_REQUEST__INIT;
	Test__Shop__V1__Book resp = TEST__SHOP__V1__BOOK__INIT;
	rpc_call *call = (rpc_call *)&user; /* opaque to generated code */

	assert_int_equal(SHOP(register)(NULL, &h, &user), RPC_STATUS_OK);
	assert_ptr_equal(seen.svc, &SHOP(desc));
	assert_ptr_equal(seen.handlers, &h);
	assert_ptr_equal(seen.user, &user);

	const rpc_method_desc *m = rpc_service_find_method(&SHOP(desc), "GetBook");
	assert_ptr_equal(m, &SHOP(methods)[SHOP_IDX(GET_BOOK)]);
	assert_int_equal(m->invoke(&h, &user, call, &req.base, &resp.base),
	                 RPC_STATUS_PERMISSION_DENIED);
	assert_ptr_equal(handled.req, &req);
	assert_ptr_equal(handled.resp, &resp);
	assert_ptr_equal(handled.user, &user);
	assert_ptr_equal(handled.call, call);

	/* a method without a handler answers UNIMPLEMENTED */
	m = &SHOP(methods)[SHOP_IDX(DELETE_BOOK)];
	Test__Shop__V1__DeleteBookRequest dreq = TEST__SHOP__V1__DELETE_BOOK_REQUEST__INIT;
	Google__Protobuf__Empty dresp = GOOGLE__PROTOBUF__EMPTY__INIT;
	assert_int_equal(m->invoke(&h, &user, call, &dreq.base, &dresp.base),
	                 RPC_STATUS_UNIMPLEMENTED);
}

static void test_client_stubs_pass_their_method(void **state)
{
	(void)state;
	Test__Shop__V1__GetBookRequest req = TEST__SHOP__V1__GET_BOOK_REQUEST__INIT;
	rpc_call_opts opts = {.timeout_ms = 250};
	const Test__Shop__V1__Book *resp = (const void *)&req; /* must be overwritten */
	rpc_reply *reply = NULL;

	memset(&seen, 0, sizeof(seen));
	assert_int_equal(SHOP(get_book)(NULL, &req, &opts, &resp, &reply), RPC_STATUS_NOT_FOUND);
	assert_ptr_equal(seen.method, &SHOP(methods)[SHOP_IDX(GET_BOOK)]);
	assert_ptr_equal(seen.req, &req.base);
	assert_ptr_equal(seen.opts, &opts);
	assert_null(resp); /* failed call: no response */

	Test__Shop__V1__Book book = TEST__SHOP__V1__BOOK__INIT;
	seen.payload = &book.base;
	assert_int_equal(SHOP(get_book)(NULL, &req, NULL, &resp, &reply), RPC_STATUS_OK);
	assert_ptr_equal(resp, &book);
	assert_ptr_equal(SHOP(get_book_response)(reply), &book);

	/* the typed accessor refuses a payload of another type */
	Google__Protobuf__Empty empty = GOOGLE__PROTOBUF__EMPTY__INIT;
	seen.payload = &empty.base;
	assert_null(SHOP(get_book_response)(reply));
	assert_null(SHOP(get_book_response)(NULL));

	assert_int_equal(SHOP(get_book_async)(NULL, &req, NULL, NULL, NULL), RPC_STATUS_OK);
	assert_int_equal(seen.async_calls, 1);
	assert_ptr_equal(seen.method, &SHOP(methods)[SHOP_IDX(GET_BOOK)]);
	seen.payload = NULL;
}

#define GENERATED_CHECKS                                                 \
	cmocka_unit_test(test_route_table_has_every_binding),            \
	    cmocka_unit_test(test_service_desc_embeds_file_descriptors), \
	    cmocka_unit_test(test_route_multi_segment_variable),         \
	    cmocka_unit_test(test_route_body_field_and_query),           \
	    cmocka_unit_test(test_route_policies_statuses_and_verbs),    \
	    cmocka_unit_test(test_trampoline_calls_the_typed_handler),   \
	    cmocka_unit_test(test_client_stubs_pass_their_method),

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_output_matches_golden_files),
	    cmocka_unit_test(test_output_is_deterministic),
	    cmocka_unit_test(test_every_error_case_fails_with_its_message),
	    cmocka_unit_test(test_plugin_rejects_bytes_that_are_not_a_request),
	    cmocka_unit_test(test_plugin_rejects_unknown_parameter),
	    GENERATED_CHECKS};
	return cmocka_run_group_tests_name("codegen", tests, NULL, NULL);
}
