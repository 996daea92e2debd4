/*
 * emit_c.c - the typed C stubs of each .proto file that declares services:
 * <file>.panthera.h and <file>.panthera.c beside protoc-c's <file>.pb-c.*.
 *
 * Per service: method indices, the constant method table
 * (<prefix>_desc), the handler struct and <prefix>_register() for servers,
 * and for clients a synchronous stub, an asynchronous stub and a typed
 * accessor of the response held by an rpc_reply. Per file: the serialized
 * FileDescriptorProtos of the file and its imports, which each service
 * descriptor points at for reflection. Names are the package and
 * the service in snake case, e.g. panthera_catalog_v1_catalog_service.
 */
#include "pgen.h"

#include <stdlib.h>
#include <string.h>

#include "panthera/rpc.h"

/* Write `text` as the body of a C block comment, one " * " per line. */
static void put_comment(pgen_buf *b, const char *indent, const char *text)
{
	const char *p = text;
	while (*p != '\0') {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		pgen_buf_printf(b, "%s *%s", indent, n ? " " : "");
		for (size_t i = 0; i < n; i++) {
			pgen_buf_putc(b, p[i]);
			/* "*" + "/" would end the comment and "/" + "*" trips -Wcomment:
			 * keep the two characters apart. */
			if ((p[i] == '*' || p[i] == '/') && i + 1 < n &&
			    p[i + 1] == (p[i] == '*' ? '/' : '*'))
				pgen_buf_putc(b, ' ');
		}
		pgen_buf_putc(b, '\n');
		p = nl ? nl + 1 : p + n;
	}
}

static void put_guard(pgen_buf *b, const char *stem)
{
	pgen_buf_puts(b, "PANTHERA_GEN_");
	/* Letters and digits stand for themselves; anything else, '_' included,
	 * becomes _XX in hex, so x/y.proto and x_y.proto get different guards. */
	for (const char *p = stem; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c >= 'a' && c <= 'z')
			pgen_buf_putc(b, (char)(c - 'a' + 'A'));
		else if ((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
			pgen_buf_putc(b, (char)c);
		else
			pgen_buf_printf(b, "_%02X", c);
	}
	pgen_buf_puts(b, "_PANTHERA_H");
}

/* Every C name the generator emits, with whose it is, to find clashes
 * between methods, services and files before the compiler does. */
typedef struct c_name {
	const char *name;
	const pgen_service *svc;
	const pgen_method *method; /* NULL for a name of the service itself */
} c_name;

static int cmp_c_name(const void *a, const void *b)
{
	const c_name *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	if (c != 0)
		return c;
	/* stable: declaration order decides which of two is reported */
	if (x->svc != y->svc)
		return x->svc < y->svc ? -1 : 1;
	if (x->method != y->method)
		return x->method == NULL       ? -1
		       : y->method == NULL     ? 1
		       : x->method < y->method ? -1
		                               : 1;
	return 0;
}

/* Keywords of C11 and C++ that a method's C name (a struct member in the
 * handler table, included from C++ too) may not be. */
static int is_keyword(const char *s)
{
	static const char *const kw[] = {
	    "auto",     "break",     "case",     "char",     "const",    "continue",  "default",
	    "do",       "double",    "else",     "enum",     "extern",   "float",     "for",
	    "goto",     "if",        "inline",   "int",      "long",     "register",  "restrict",
	    "return",   "short",     "signed",   "sizeof",   "static",   "struct",    "switch",
	    "typedef",  "union",     "unsigned", "void",     "volatile", "while",     "bool",
	    "catch",    "class",     "delete",   "explicit", "export",   "false",     "friend",
	    "mutable",  "namespace", "new",      "operator", "private",  "protected", "public",
	    "template", "this",      "throw",    "true",     "try",      "typename",  "using",
	    "virtual",  "asm",       "typeid",   "alignas",  "alignof",  "noexcept",  "nullptr",
	    "decltype", "constexpr", "concept",  "requires", "co_await", "co_return", "co_yield"};
	for (size_t i = 0; i < sizeof(kw) / sizeof(kw[0]); i++) {
		if (strcmp(s, kw[i]) == 0)
			return 1;
	}
	return 0;
}

int pgen_check_c_names(pgen *g)
{
	size_t cap = 8;
	for (size_t i = 0; i < g->n_services; i++)
		cap += 5 + 5 * g->services[i].n_methods;
	c_name *names = pgen_alloc_array(&g->arena, cap, sizeof(*names));
	if (names == NULL)
		return -1;
	size_t n = 0;
#define ADD(nm, s_, m_)                                 \
	do {                                            \
		const char *nm_ = (nm);                 \
		if (nm_ == NULL)                        \
			return -1;                      \
		names[n++] = (c_name){nm_, (s_), (m_)}; \
	} while (0)
	for (size_t i = 0; i < g->n_services; i++) {
		const pgen_service *s = &g->services[i];
		const char *P = s->c_prefix, *PU = s->c_upper;
		ADD(pgen_printf(&g->arena, "%s_desc", P), s, NULL);
		ADD(pgen_printf(&g->arena, "%s_methods", P), s, NULL);
		ADD(pgen_printf(&g->arena, "%s_handlers", P), s, NULL);
		ADD(pgen_printf(&g->arena, "%s_register", P), s, NULL);
		ADD(pgen_printf(&g->arena, "%s_METHOD_COUNT", PU), s, NULL);
		for (size_t k = 0; k < s->n_methods; k++) {
			const pgen_method *m = &s->methods[k];
			if (is_keyword(m->c_name))
				return pgen_fail(
				    g,
				    "%s: method %s.%s: its C name '%s' is a C or C++ keyword; rename the method",
				    s->file->name, s->full_name, m->proto->name, m->c_name);
			ADD(pgen_printf(&g->arena, "%s_%s", P, m->c_name), s, m);
			ADD(pgen_printf(&g->arena, "%s_%s_async", P, m->c_name), s, m);
			ADD(pgen_printf(&g->arena, "%s_%s_response", P, m->c_name), s, m);
			ADD(pgen_printf(&g->arena, "%s__invoke__%s", P, m->c_name), s, m);
			ADD(pgen_printf(&g->arena, "%s_%s", PU, m->c_upper), s, m);
		}
	}
	if (g->emit_set) {
		ADD(pgen_printf(&g->arena, "%s_routes", g->name), NULL, NULL);
		ADD(pgen_printf(&g->arena, "%s_route_list", g->name), NULL, NULL);
		ADD(pgen_printf(&g->arena, "%s_route_services", g->name), NULL, NULL);
	}
#undef ADD
	qsort(names, n, sizeof(*names), cmp_c_name);
	for (size_t i = 1; i < n; i++) {
		if (strcmp(names[i - 1].name, names[i].name) != 0)
			continue;
		const c_name *a = &names[i - 1], *b = &names[i];
		/* Report on a method when one is involved: that is what to rename. */
		if (b->method == NULL && a->method != NULL) {
			const c_name *t = a;
			a = b;
			b = t;
		}
		const char *other =
		    a->svc == NULL ? pgen_printf(&g->arena, "the route table's symbols")
		    : a->method == NULL
		        ? pgen_printf(&g->arena, "a symbol of service %s (%s)", a->svc->full_name,
		                      a->svc->file->name)
		        : pgen_printf(&g->arena, "a symbol of method %s.%s (%s)", a->svc->full_name,
		                      a->method->proto->name, a->svc->file->name);
		if (other == NULL)
			return -1;
		if (b->svc == NULL)
			return pgen_fail(g, "parameter name=%s: the C name '%s' collides with %s",
			                 g->name, b->name, other);
		if (b->method == NULL)
			return pgen_fail(g, "%s: service %s: its C name '%s' collides with %s",
			                 b->svc->file->name, b->svc->full_name, b->name, other);
		return pgen_fail(
		    g, "%s: method %s.%s: its C name '%s' collides with %s; rename the method",
		    b->svc->file->name, b->svc->full_name, b->method->proto->name, b->name, other);
	}
	return 0;
}

typedef struct type_names {
	const char *in_type, *out_type, *in_desc, *out_desc;
} type_names;

static int method_types(pgen *g, const pgen_method *m, type_names *t)
{
	t->in_type = pgen_c_type(&g->arena, m->input->full_name);
	t->out_type = pgen_c_type(&g->arena, m->output->full_name);
	char *il = pgen_c_lower(&g->arena, m->input->full_name);
	char *ol = pgen_c_lower(&g->arena, m->output->full_name);
	if (t->in_type == NULL || t->out_type == NULL || il == NULL || ol == NULL)
		return -1;
	t->in_desc = pgen_printf(&g->arena, "%s__descriptor", il);
	t->out_desc = pgen_printf(&g->arena, "%s__descriptor", ol);
	return (t->in_desc && t->out_desc) ? 0 : -1;
}

static void emit_header_service(pgen_buf *h, const pgen_service *s, const type_names *tn)
{
	const char *P = s->c_prefix;
	pgen_buf_printf(h, "\n/* ==== %s ==== */\n", s->full_name);
	if (s->comment) {
		pgen_buf_puts(h, "/*\n");
		put_comment(h, "", s->comment);
		pgen_buf_puts(h, " */\n");
	}
	pgen_buf_printf(h, "\n/* Index of each method in %s_desc.methods. */\nenum {\n", P);
	for (size_t i = 0; i < s->n_methods; i++)
		pgen_buf_printf(h, "\t%s_%s = %zu,\n", s->c_upper, s->methods[i].c_upper, i);
	pgen_buf_printf(h, "\t%s_METHOD_COUNT = %zu\n};\n", s->c_upper, s->n_methods);

	pgen_buf_printf(h,
	                "\n/*\n * The method table of %s: wire names, message descriptors,\n"
	                " * flags and typed trampolines. Constant; read by servers, the gateway,\n"
	                " * the CLI and reflection.\n */\n"
	                "extern const rpc_service_desc %s_desc;\n",
	                s->full_name, P);
	/* C has no empty arrays or structs: a service without methods gets no
	 * method array and a placeholder handler member. */
	if (s->n_methods > 0)
		pgen_buf_printf(h,
		                "/* The same methods as an array, indexed by the enum above. */\n"
		                "extern const rpc_method_desc %s_methods[%s_METHOD_COUNT];\n",
		                P, s->c_upper);

	pgen_buf_printf(
	    h,
	    "\n/*\n * Server side: one handler per method. A handler reads `req` (owned by\n"
	    " * the runtime, valid during the call), fills `resp` (initialised by the\n"
	    " * runtime; anything it points to must come from rpc_call_alloc(call, ...)),\n"
	    " * and returns RPC_STATUS_OK or an error status. A NULL handler answers\n"
	    " * RPC_STATUS_UNIMPLEMENTED. `user` is the pointer given to\n"
	    " * %s_register(). Handlers run on worker threads, several at once.\n */\n"
	    "typedef struct %s_handlers {\n",
	    P, P);
	for (size_t i = 0; i < s->n_methods; i++) {
		const pgen_method *m = &s->methods[i];
		pgen_buf_puts(h, "\t/*\n");
		pgen_buf_printf(h, "\t * %s%s\n", m->proto->name, m->comment ? ":" : "");
		if (m->comment)
			put_comment(h, "\t", m->comment);
		pgen_buf_puts(h, "\t */\n");
		pgen_buf_printf(
		    h, "\trpc_status (*%s)(rpc_call *call, const %s *req, %s *resp, void *user);\n",
		    m->c_name, tn[i].in_type, tn[i].out_type);
	}
	if (s->n_methods == 0)
		pgen_buf_puts(h, "\tvoid *unused; /* the service has no methods yet */\n");
	pgen_buf_printf(h, "} %s_handlers;\n", P);

	pgen_buf_printf(
	    h,
	    "\n/*\n * Register %s on `srv`. `handlers` and `user` must stay\n"
	    " * valid until the server is destroyed. Returns the status of\n"
	    " * rpc_server_add_service().\n */\n"
	    "rpc_status %s_register(rpc_server *srv, const %s_handlers *handlers, void *user);\n",
	    s->full_name, P, P);

	pgen_buf_puts(
	    h, "\n/*\n * Client side, per method:\n"
	       " *   <method>(ch, req, opts, &resp, &reply) calls and waits. It returns the\n"
	       " *     call's status and always sets *reply (free it with rpc_reply_free(),\n"
	       " *     which also frees *resp); *resp is the response when the status is\n"
	       " *     RPC_STATUS_OK, else NULL. `resp` may be NULL; `opts` may be NULL.\n"
	       " *   <method>_async(ch, req, opts, done, arg) starts the call; on\n"
	       " *     RPC_STATUS_OK `done` runs exactly once with the reply, otherwise never.\n"
	       " *   <method>_response(reply) is the typed response held by a reply, or NULL\n"
	       " *     when the call failed.\n"
	       " * All are thread-safe on one channel.\n */\n");
	for (size_t i = 0; i < s->n_methods; i++) {
		const pgen_method *m = &s->methods[i];
		pgen_buf_printf(h, "\n/* %s.%s */\n", s->full_name, m->proto->name);
		pgen_buf_printf(
		    h,
		    "rpc_status %s_%s(rpc_channel *ch, const %s *req, const rpc_call_opts *opts,\n"
		    "\tconst %s **resp, rpc_reply **reply);\n",
		    P, m->c_name, tn[i].in_type, tn[i].out_type);
		pgen_buf_printf(
		    h,
		    "rpc_status %s_%s_async(rpc_channel *ch, const %s *req, const rpc_call_opts *opts,\n"
		    "\trpc_reply_fn done, void *arg);\n",
		    P, m->c_name, tn[i].in_type);
		pgen_buf_printf(h, "const %s *%s_%s_response(const rpc_reply *reply);\n",
		                tn[i].out_type, P, m->c_name);
	}
}

static void emit_source_service(pgen_buf *c, const pgen_service *s, const type_names *tn,
                                size_t n_files)
{
	const char *P = s->c_prefix;
	pgen_buf_printf(c, "\n/* ==== %s ==== */\n", s->full_name);
	for (size_t i = 0; i < s->n_methods; i++) {
		const pgen_method *m = &s->methods[i];
		pgen_buf_printf(
		    c,
		    "\nstatic rpc_status %s__invoke__%s(const void *handlers, void *user, rpc_call *call,\n"
		    "\tconst ProtobufCMessage *req, ProtobufCMessage *resp)\n{\n"
		    "\tconst %s_handlers *h = handlers;\n"
		    "\tif (h->%s == NULL)\n\t\treturn RPC_STATUS_UNIMPLEMENTED;\n"
		    "\treturn h->%s(call, (const %s *)req, (%s *)resp, user);\n}\n",
		    P, m->c_name, P, m->c_name, m->c_name, tn[i].in_type, tn[i].out_type);
	}
	if (s->n_methods > 0)
		pgen_buf_printf(c, "\nconst rpc_method_desc %s_methods[%s_METHOD_COUNT] = {\n", P,
		                s->c_upper);
	for (size_t i = 0; i < s->n_methods; i++) {
		const pgen_method *m = &s->methods[i];
		pgen_buf_printf(c, "\t[%s_%s] = {\n", s->c_upper, m->c_upper);
		pgen_buf_printf(c, "\t\t.path = \"/%s/%s\",\n", s->full_name, m->proto->name);
		pgen_buf_printf(c, "\t\t.name = \"%s\",\n", m->proto->name);
		pgen_buf_printf(c, "\t\t.input = &%s,\n", tn[i].in_desc);
		pgen_buf_printf(c, "\t\t.output = &%s,\n", tn[i].out_desc);
		pgen_buf_puts(c, "\t\t.flags = ");
		int any = 0;
		if (m->flags & RPC_METHOD_IDEMPOTENT) {
			pgen_buf_puts(c, "RPC_METHOD_IDEMPOTENT");
			any = 1;
		}
		if (m->flags & RPC_METHOD_NO_SIDE_EFFECTS) {
			pgen_buf_printf(c, "%sRPC_METHOD_NO_SIDE_EFFECTS", any ? " | " : "");
			any = 1;
		}
		if (m->flags & RPC_METHOD_DEPRECATED) {
			pgen_buf_printf(c, "%sRPC_METHOD_DEPRECATED", any ? " | " : "");
			any = 1;
		}
		pgen_buf_printf(c, "%s,\n", any ? "" : "0");
		pgen_buf_printf(c, "\t\t.invoke = %s__invoke__%s,\n\t},\n", P, m->c_name);
	}
	if (s->n_methods > 0)
		pgen_buf_puts(c, "};\n");
	pgen_buf_printf(
	    c, "\nconst rpc_service_desc %s_desc = {\n\t.name = \"%s\",\n\t.proto_file = \"%s\",\n",
	    P, s->full_name, s->file->name);
	if (s->n_methods > 0)
		pgen_buf_printf(c, "\t.methods = %s_methods,\n\t.n_methods = %s_METHOD_COUNT,\n", P,
		                s->c_upper);
	pgen_buf_printf(c, "\t.files = pgen__files,\n\t.n_files = %zu,\n", n_files);
	pgen_buf_puts(c, "};\n");
	pgen_buf_printf(
	    c,
	    "\nrpc_status %s_register(rpc_server *srv, const %s_handlers *handlers, void *user)\n{\n"
	    "\treturn rpc_server_add_service(srv, &%s_desc, handlers, user);\n}\n",
	    P, P, P);
	for (size_t i = 0; i < s->n_methods; i++) {
		const pgen_method *m = &s->methods[i];
		const char *M = m->c_name;
		pgen_buf_printf(
		    c,
		    "\nrpc_status %s_%s(rpc_channel *ch, const %s *req, const rpc_call_opts *opts,\n"
		    "\tconst %s **resp, rpc_reply **reply)\n{\n"
		    "\trpc_status st = rpc_channel_call(ch, &%s_methods[%s_%s], (const ProtobufCMessage *)req, opts, reply);\n"
		    "\tif (resp != NULL)\n\t\t*resp = reply != NULL ? %s_%s_response(*reply) : NULL;\n"
		    "\treturn st;\n}\n",
		    P, M, tn[i].in_type, tn[i].out_type, P, s->c_upper, m->c_upper, P, M);
		pgen_buf_printf(
		    c,
		    "\nrpc_status %s_%s_async(rpc_channel *ch, const %s *req, const rpc_call_opts *opts,\n"
		    "\trpc_reply_fn done, void *arg)\n{\n"
		    "\treturn rpc_channel_call_async(ch, &%s_methods[%s_%s], (const ProtobufCMessage *)req, opts, done, arg);\n}\n",
		    P, M, tn[i].in_type, P, s->c_upper, m->c_upper);
		pgen_buf_printf(
		    c,
		    "\nconst %s *%s_%s_response(const rpc_reply *reply)\n{\n"
		    "\tconst ProtobufCMessage *p = rpc_reply_payload(reply);\n"
		    "\treturn (p != NULL && p->descriptor == &%s) ? (const %s *)p : NULL;\n}\n",
		    tn[i].out_type, P, M, tn[i].out_desc, tn[i].out_type);
	}
}

/* ---- descriptors for reflection ---- */

/* Index of the request's file named `name`, or n_proto_file. */
static size_t find_file_index(const pgen *g, const char *name)
{
	for (size_t i = 0; i < g->req->n_proto_file; i++) {
		if (strcmp(g->req->proto_file[i]->name, name) == 0)
			return i;
	}
	return g->req->n_proto_file;
}

/*
 * Append to order[] the index of file `i` after its imports, depth first,
 * so that every file comes after the files it imports. state[]: 0 unseen,
 * 1 on the path (an import cycle, which protoc refuses anyway), 2 done.
 */
static int order_files(pgen *g, size_t i, unsigned char *state, size_t *order, size_t *n)
{
	if (state[i] == 2)
		return 0;
	if (state[i] == 1)
		return pgen_fail(g, "%s: import cycle", g->req->proto_file[i]->name);
	state[i] = 1;
	const pgen_file_proto *f = g->req->proto_file[i];
	for (size_t d = 0; d < f->n_dependency; d++) {
		size_t j = find_file_index(g, f->dependency[d]);
		if (j == g->req->n_proto_file)
			return pgen_fail(g, "%s: import %s is not in the request", f->name,
			                 f->dependency[d]);
		if (order_files(g, j, state, order, n) != 0)
			return -1;
	}
	state[i] = 2;
	order[(*n)++] = i;
	return 0;
}

/* `len` bytes as the body of an array initializer, in decimal, 20 to a
 * line. Not a string literal: one past 4095 characters trips
 * -Woverlength-strings under -pedantic. */
static void put_bytes_array(pgen_buf *c, const uint8_t *data, size_t len)
{
	for (size_t i = 0; i < len; i++)
		pgen_buf_printf(c, "%s%u,", i % 20 == 0 ? (i ? "\n\t" : "\t") : "", data[i]);
	pgen_buf_putc(c, '\n');
}

/*
 * Emit, static in the file's .panthera.c, the serialized
 * FileDescriptorProto of `f` and of everything it imports (without
 * source_code_info, so a file's bytes do not depend on whether it was
 * generated or imported), and the table pgen__files[] that the service
 * descriptors point at. Each generated file carries its own closure, so a
 * program links no other generated file for reflection to be complete.
 * Sets *n_files.
 */
static int emit_file_descriptors(pgen *g, pgen_buf *c, const pgen_file_proto *f, size_t *n_files)
{
	size_t nf = g->req->n_proto_file;
	unsigned char *state = pgen_alloc(&g->arena, nf + 1);
	size_t *order = pgen_alloc_array(&g->arena, nf + 1, sizeof(*order));
	size_t *lens = pgen_alloc_array(&g->arena, nf + 1, sizeof(*lens));
	size_t n = 0;
	if (state == NULL || order == NULL || lens == NULL)
		return -1;
	size_t self = find_file_index(g, f->name);
	if (self == nf || order_files(g, self, state, order, &n) != 0)
		return -1;
	pgen_buf_puts(c,
	              "\n/* The descriptors of this file and of its imports, for reflection. */\n");
	for (size_t k = 0; k < n; k++) {
		Google__Protobuf__FileDescriptorProto copy = *g->req->proto_file[order[k]];
		copy.source_code_info = NULL;
		size_t len = protobuf_c_message_get_packed_size(&copy.base);
		uint8_t *bytes = pgen_alloc(&g->arena, len + 1);
		if (bytes == NULL)
			return -1;
		if (protobuf_c_message_pack(&copy.base, bytes) != len)
			return pgen_fail(g, "%s: packing its descriptor failed", copy.name);
		lens[k] = len;
		/* never an empty array: a descriptor has at least its name */
		pgen_buf_printf(c, "\n/* %s */\nstatic const uint8_t pgen__file_%zu[%zu] = {\n",
		                copy.name, k, len ? len : 1);
		put_bytes_array(c, bytes, len);
		pgen_buf_puts(c, "};\n");
	}
	pgen_buf_printf(c, "\nstatic const rpc_file_descriptor pgen__files[%zu] = {\n", n);
	for (size_t k = 0; k < n; k++)
		pgen_buf_printf(c, "\t{\"%s\", pgen__file_%zu, %zu},\n",
		                g->req->proto_file[order[k]]->name, k, lens[k]);
	pgen_buf_puts(c, "};\n");
	*n_files = n;
	return 0;
}

static int emit_file(pgen *g, const pgen_file_proto *f)
{
	size_t first = g->n_services, count = 0;
	for (size_t i = 0; i < g->n_services; i++) {
		if (g->services[i].file == f) {
			if (first == g->n_services)
				first = i;
			count++;
		}
	}
	if (count == 0)
		return 0;
	const char *stem = pgen_strip_proto(&g->arena, f->name);
	if (stem == NULL)
		return -1;
	pgen_buf h = {0}, c = {0};
	int rc = -1;

	pgen_buf_printf(&h, "/* Generated by protoc-gen-panthera from %s. DO NOT EDIT. */\n",
	                f->name);
	pgen_buf_puts(&h, "#ifndef ");
	put_guard(&h, stem);
	pgen_buf_puts(&h, "\n#define ");
	put_guard(&h, stem);
	pgen_buf_printf(&h, "\n\n#include <panthera/rpc.h>\n\n#include \"%s.pb-c.h\"\n", stem);
	/* Message types of other files, in first-use order. */
	size_t n_methods = 0;
	for (size_t si = first; si < first + count; si++)
		n_methods += g->services[si].n_methods;
	const char **incl = pgen_alloc_array(&g->arena, 2 * n_methods + 1, sizeof(char *));
	size_t n_incl = 0;
	if (incl == NULL)
		goto out;
	for (size_t si = first; si < first + count; si++) {
		const pgen_service *s = &g->services[si];
		for (size_t i = 0; i < s->n_methods; i++) {
			const char *files[2] = {s->methods[i].input->file->name,
			                        s->methods[i].output->file->name};
			for (int k = 0; k < 2; k++) {
				int seen = strcmp(files[k], f->name) == 0;
				for (size_t j = 0; j < n_incl && !seen; j++)
					seen = strcmp(incl[j], files[k]) == 0;
				if (!seen) {
					incl[n_incl++] = files[k];
					const char *st = pgen_strip_proto(&g->arena, files[k]);
					if (st == NULL)
						goto out;
					pgen_buf_printf(&h, "#include \"%s.pb-c.h\"\n", st);
				}
			}
		}
	}
	pgen_buf_puts(&h, "\n#ifdef __cplusplus\nextern \"C\" {\n#endif\n");

	pgen_buf_printf(&c, "/* Generated by protoc-gen-panthera from %s. DO NOT EDIT. */\n",
	                f->name);
	pgen_buf_printf(&c, "#include \"%s.panthera.h\"\n", stem);
	size_t n_files = 0;
	if (emit_file_descriptors(g, &c, f, &n_files) != 0)
		goto out;

	for (size_t si = first; si < first + count; si++) {
		const pgen_service *s = &g->services[si];
		type_names *tn = pgen_alloc_array(&g->arena, s->n_methods + 1, sizeof(*tn));
		if (tn == NULL)
			goto out;
		for (size_t i = 0; i < s->n_methods; i++) {
			if (method_types(g, &s->methods[i], &tn[i]) != 0)
				goto out;
		}
		emit_header_service(&h, s, tn);
		emit_source_service(&c, s, tn, n_files);
	}
	pgen_buf_puts(&h, "\n#ifdef __cplusplus\n}\n#endif\n\n#endif\n");

	char *hname = pgen_printf(&g->arena, "%s.panthera.h", stem);
	char *cname = pgen_printf(&g->arena, "%s.panthera.c", stem);
	if (hname == NULL || cname == NULL)
		goto out;
	if (pgen_add_file(g, hname, &h) != 0 || pgen_add_file(g, cname, &c) != 0)
		goto out;
	rc = 0;
out:
	pgen_buf_free(&h);
	pgen_buf_free(&c);
	return rc;
}

int pgen_emit_c(pgen *g)
{
	if (pgen_check_c_names(g) != 0)
		return -1;
	for (size_t i = 0; i < g->req->n_proto_file; i++) {
		const pgen_file_proto *f = g->req->proto_file[i];
		if (pgen_file_is_generated(g, f->name) && emit_file(g, f) != 0)
			return -1;
	}
	return 0;
}
