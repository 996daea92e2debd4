/*
 * protoc-gen-panthera - protoc plugin: typed C stubs, the HTTP route table and
 * the OpenAPI document of Panthera services.
 *
 *   protoc -I proto --plugin=protoc-gen-panthera=PATH --panthera_out=DIR \
 *          [--panthera_opt=name=panthera,title=...,version=...,server=URL,set=false] FILES
 *
 * Parameters (comma-separated key=value):
 *   name     base name of the set outputs (<name>_routes.[ch],
 *            <name>.openapi.json); a C identifier; default "panthera".
 *   title    the OpenAPI info.title; default "Panthera API".
 *   version  the OpenAPI info.version; default "1.0.0".
 *   server   the OpenAPI servers[0].url; default "http://127.0.0.1:8080".
 *   set      "false" emits only the per-file stubs, not the route table and
 *            the OpenAPI document of the set.
 * Run protoc once over every file of a set, so the route table can see all
 * routes and reject collisions between them.
 */
#include "pgen.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Requests over this size are refused (protoc's own limit is 2 GiB; the
 * platform's whole set is well under 1 MiB). */
#define PGEN_MAX_REQUEST (256u * 1024u * 1024u)

int pgen_fail(pgen *g, const char *fmt, ...)
{
	if (g->error != NULL)
		return -1;
	va_list ap;
	va_start(ap, fmt);
	pgen_buf b = {0};
	pgen_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	if (!b.failed)
		g->error = pgen_strndup(&g->arena, b.data, b.len);
	pgen_buf_free(&b);
	if (g->error == NULL)
		g->arena.failed = 1;
	return -1;
}

int pgen_add_file(pgen *g, const char *name, pgen_buf *content)
{
	if (content->failed) {
		g->arena.failed = 1;
		return -1;
	}
	if (g->n_files == g->cap_files) {
		size_t cap = g->cap_files ? g->cap_files * 2 : 16;
		void *p = pgen_alloc_array(&g->arena, cap, sizeof(*g->files));
		if (p == NULL)
			return -1;
		if (g->files)
			memcpy(p, g->files, g->n_files * sizeof(*g->files));
		g->files = p;
		g->cap_files = cap;
	}
	Google__Protobuf__Compiler__CodeGeneratorResponse__File *f =
	    pgen_alloc(&g->arena, sizeof(*f));
	if (f == NULL)
		return -1;
	google__protobuf__compiler__code_generator_response__file__init(f);
	f->name = pgen_strdup(&g->arena, name);
	f->content = pgen_strndup(&g->arena, content->data ? content->data : "", content->len);
	if (f->name == NULL || f->content == NULL)
		return -1;
	g->files[g->n_files++] = f;
	return 0;
}

static int is_identifier(const char *s)
{
	if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
		return 0;
	for (; *s; s++) {
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_'))
			return 0;
	}
	return 1;
}

int pgen_parse_params(pgen *g, const char *param)
{
	g->name = "panthera";
	g->openapi_title = "Panthera API";
	g->openapi_version = "1.0.0";
	g->openapi_server = "http://127.0.0.1:8080";
	g->emit_set = 1;
	if (param == NULL || param[0] == '\0')
		return 0;
	char *copy = pgen_strdup(&g->arena, param);
	if (copy == NULL)
		return -1;
	char *save = NULL;
	for (char *kv = strtok_r(copy, ",", &save); kv != NULL; kv = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(kv, '=');
		if (eq == NULL)
			return pgen_fail(g, "parameter '%s': expected key=value", kv);
		*eq = '\0';
		const char *v = eq + 1;
		if (strcmp(kv, "name") == 0) {
			if (!is_identifier(v))
				return pgen_fail(g, "parameter name='%s': must be a C identifier",
				                 v);
			g->name = v;
		} else if (strcmp(kv, "title") == 0) {
			g->openapi_title = v;
		} else if (strcmp(kv, "version") == 0) {
			g->openapi_version = v;
		} else if (strcmp(kv, "server") == 0) {
			g->openapi_server = v;
		} else if (strcmp(kv, "set") == 0) {
			if (strcmp(v, "true") != 0 && strcmp(v, "false") != 0)
				return pgen_fail(g, "parameter set='%s': must be true or false", v);
			g->emit_set = strcmp(v, "true") == 0;
		} else {
			return pgen_fail(
			    g, "unknown parameter '%s' (known: name, title, version, server, set)",
			    kv);
		}
	}
	return 0;
}

static uint8_t *read_all(FILE *in, size_t *len)
{
	size_t cap = 64 * 1024, n = 0;
	uint8_t *buf = malloc(cap);
	if (buf == NULL)
		return NULL;
	for (;;) {
		if (n == cap) {
			if (cap >= PGEN_MAX_REQUEST) {
				free(buf);
				errno = EFBIG;
				return NULL;
			}
			uint8_t *p = realloc(buf, cap * 2);
			if (p == NULL) {
				free(buf);
				return NULL;
			}
			buf = p;
			cap *= 2;
		}
		size_t r = fread(buf + n, 1, cap - n, in);
		n += r;
		if (r == 0) {
			if (ferror(in)) {
				free(buf);
				return NULL;
			}
			break;
		}
	}
	*len = n;
	return buf;
}

/* protobuf-c's allocator for the request: tells a failed allocation apart
 * from bytes that do not decode, which unpack reports alike. */
static void *request_alloc(void *data, size_t size)
{
	void *p = malloc(size);
	if (p == NULL)
		*(int *)data = 1;
	return p;
}

static void request_free(void *data, void *p)
{
	(void)data;
	free(p);
}

static int generate(pgen *g)
{
	if (pgen_parse_params(g, g->req->parameter) != 0 || pgen_build_model(g) != 0 ||
	    pgen_build_routes(g) != 0 || pgen_emit_c(g) != 0)
		return -1;
	if (g->emit_set && (pgen_emit_routes(g) != 0 || pgen_emit_openapi(g) != 0))
		return -1;
	/* Some failed allocations only mark the arena (a comment dropped, say):
	 * never answer with output that may be incomplete. */
	return g->arena.failed ? -1 : 0;
}

int main(void)
{
	size_t len = 0;
	uint8_t *in = read_all(stdin, &len);
	if (in == NULL) {
		fprintf(stderr, "protoc-gen-panthera: reading the request: %s\n", strerror(errno));
		return 1;
	}
	pgen g;
	memset(&g, 0, sizeof(g));
	int rc = 1;
	int unpack_oom = 0;
	ProtobufCAllocator unpack_alloc = {request_alloc, request_free, &unpack_oom};
	Google__Protobuf__Compiler__CodeGeneratorRequest *req =
	    google__protobuf__compiler__code_generator_request__unpack(&unpack_alloc, len, in);
	if (req == NULL) {
		if (unpack_oom)
			fprintf(stderr,
			        "protoc-gen-panthera: out of memory decoding the request\n");
		else
			fprintf(stderr,
			        "protoc-gen-panthera: standard input is not a CodeGeneratorRequest "
			        "(run me through protoc)\n");
		goto out;
	}
	g.req = req;

	Google__Protobuf__Compiler__CodeGeneratorResponse resp =
	    GOOGLE__PROTOBUF__COMPILER__CODE_GENERATOR_RESPONSE__INIT;
	if (generate(&g) != 0) {
		/* After a failed allocation any error message may be a symptom:
		 * report the cause. */
		if (g.error == NULL || g.arena.failed) {
			fprintf(stderr, "protoc-gen-panthera: out of memory\n");
			goto out;
		}
		resp.error = g.error;
	} else {
		resp.n_file = g.n_files;
		resp.file = g.files;
	}
	resp.has_supported_features = 1;
	resp.supported_features = 0; /* protoc-c cannot take proto3 `optional` either */

	size_t out_len = protobuf_c_message_get_packed_size(&resp.base);
	uint8_t *out = malloc(out_len ? out_len : 1);
	if (out == NULL) {
		fprintf(stderr, "protoc-gen-panthera: out of memory\n");
		goto out;
	}
	protobuf_c_message_pack(&resp.base, out);
	size_t w = fwrite(out, 1, out_len, stdout);
	free(out);
	if (w != out_len || fflush(stdout) != 0) {
		fprintf(stderr, "protoc-gen-panthera: writing the response: %s\n", strerror(errno));
		goto out;
	}
	rc = 0;
out:
	if (req != NULL)
		google__protobuf__compiler__code_generator_request__free_unpacked(req,
		                                                                  &unpack_alloc);
	pgen_arena_free(&g.arena);
	free(in);
	return rc;
}
