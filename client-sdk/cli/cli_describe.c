/*
 * cli_describe.c - finding and printing what a server's reflection
 * describes (a google.protobuf.FileDescriptorSet), for `panthera describe`
 * and for `panthera call` to learn a method's types.
 *
 * Names are fully qualified without the leading dot, as protoc writes them
 * in .proto files and as ListServices answers them; type names in the set
 * (".pkg.Msg") are printed without their dot.
 */
#include "cli.h"

#include <string.h>

/* prefix + "." + name into out (or name alone when prefix is empty);
 * 0, or -1 when it does not fit. */
static int join(char *out, size_t cap, const char *prefix, const char *name)
{
	int n =
	    prefix[0] ? snprintf(out, cap, "%s.%s", prefix, name) : snprintf(out, cap, "%s", name);
	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

static const char *pkg_of(const cli_file *f)
{
	return f->package ? f->package : "";
}

static int find_in_message(const cli_message *m, const char *prefix, const char *name,
                           cli_symbol *out, unsigned depth)
{
	char full[sizeof(out->full_name)];
	if (depth > 32 || m->name == NULL || join(full, sizeof(full), prefix, m->name) != 0)
		return 0;
	if (strcmp(full, name) == 0) {
		out->message = m;
		memcpy(out->full_name, full, sizeof(full));
		return 1;
	}
	for (size_t i = 0; i < m->n_enum_type; i++) {
		char e[sizeof(out->full_name)];
		if (m->enum_type[i]->name != NULL &&
		    join(e, sizeof(e), full, m->enum_type[i]->name) == 0 && strcmp(e, name) == 0) {
			out->enumeration = m->enum_type[i];
			memcpy(out->full_name, e, sizeof(e));
			return 1;
		}
	}
	for (size_t i = 0; i < m->n_nested_type; i++) {
		if (find_in_message(m->nested_type[i], full, name, out, depth + 1))
			return 1;
	}
	return 0;
}

int cli_find_symbol(const cli_fdset *set, const char *name, cli_symbol *out)
{
	memset(out, 0, sizeof(*out));
	if (set == NULL || name == NULL)
		return 0;
	while (*name == '.' || *name == '/')
		name++;
	/* "pkg.Service/Method" is "pkg.Service.Method" */
	char want[sizeof(out->full_name)];
	if (snprintf(want, sizeof(want), "%s", name) >= (int)sizeof(want))
		return 0;
	char *slash = strchr(want, '/');
	if (slash != NULL)
		*slash = '.';
	for (size_t fi = 0; fi < set->n_file; fi++) {
		const cli_file *f = set->file[fi];
		out->file = f;
		for (size_t si = 0; si < f->n_service; si++) {
			const cli_service *s = f->service[si];
			char full[sizeof(out->full_name)];
			if (s->name == NULL || join(full, sizeof(full), pkg_of(f), s->name) != 0)
				continue;
			size_t n = strlen(full);
			if (strcmp(full, want) == 0) {
				out->service = s;
				memcpy(out->full_name, full, sizeof(full));
				return 1;
			}
			if (strncmp(full, want, n) != 0 || want[n] != '.')
				continue;
			for (size_t mi = 0; mi < s->n_method; mi++) {
				if (s->method[mi]->name &&
				    strcmp(s->method[mi]->name, want + n + 1) == 0) {
					out->service = s;
					out->method = s->method[mi];
					memcpy(out->full_name, full, sizeof(full));
					return 1;
				}
			}
		}
		for (size_t mi = 0; mi < f->n_message_type; mi++) {
			if (find_in_message(f->message_type[mi], pkg_of(f), want, out, 0))
				return 1;
		}
		for (size_t ei = 0; ei < f->n_enum_type; ei++) {
			char full[sizeof(out->full_name)];
			if (f->enum_type[ei]->name != NULL &&
			    join(full, sizeof(full), pkg_of(f), f->enum_type[ei]->name) == 0 &&
			    strcmp(full, want) == 0) {
				out->enumeration = f->enum_type[ei];
				memcpy(out->full_name, full, sizeof(full));
				return 1;
			}
		}
	}
	memset(out, 0, sizeof(*out));
	return 0;
}

const cli_message *cli_find_message(const cli_fdset *set, const char *type_name)
{
	cli_symbol sym;
	if (type_name == NULL || !cli_find_symbol(set, type_name, &sym))
		return NULL;
	return sym.message;
}

/* ---- printing ---- */

static const char *scalar_name(int type)
{
	static const char *const names[] = {
	    [GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_DOUBLE] = "double",
	    [GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_FLOAT] = "float",
	    [GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_INT64] = "int64",
	    [GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_UINT64] = "uint64",
	    [GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_INT32] = "int32",
	    [GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_FIXED64] = "fixed64",
	    [GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_FIXED32] = "fixed32",
	    [GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_BOOL] = "bool",
	    [GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_STRING] = "string",
	    [GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_BYTES] = "bytes",
	    [GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_UINT32] = "uint32",
	    [GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_SFIXED32] = "sfixed32",
	    [GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_SFIXED64] = "sfixed64",
	    [GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_SINT32] = "sint32",
	    [GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_SINT64] = "sint64",
	};
	if (type < 0 || (size_t)type >= sizeof(names) / sizeof(names[0]) || names[type] == NULL)
		return "?";
	return names[type];
}

static const char *bare(const char *type_name)
{
	if (type_name == NULL)
		return "?";
	return type_name[0] == '.' ? type_name + 1 : type_name;
}

static const Google__Protobuf__FieldDescriptorProto *field_numbered(const cli_message *m,
                                                                    int number)
{
	for (size_t i = 0; i < m->n_field; i++) {
		if (m->field[i]->number == number)
			return m->field[i];
	}
	return NULL;
}

static void print_field_type(FILE *out, const Google__Protobuf__FieldDescriptorProto *fd)
{
	if (fd->type == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_MESSAGE ||
	    fd->type == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_ENUM ||
	    fd->type == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_GROUP)
		fputs(bare(fd->type_name), out);
	else
		fputs(scalar_name((int)fd->type), out);
}

static void print_message(FILE *out, const cli_fdset *set, const cli_message *m, const char *full,
                          unsigned depth)
{
	fprintf(out, "message %s {\n", full);
	for (size_t i = 0; i < m->n_field; i++) {
		const Google__Protobuf__FieldDescriptorProto *fd = m->field[i];
		const cli_message *entry = NULL;
		if (fd->type == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_MESSAGE)
			entry = cli_find_message(set, fd->type_name);
		fputs("  ", out);
		if (entry != NULL && entry->options != NULL && entry->options->map_entry) {
			const Google__Protobuf__FieldDescriptorProto *k = field_numbered(entry, 1);
			const Google__Protobuf__FieldDescriptorProto *v = field_numbered(entry, 2);
			fputs("map<", out);
			if (k != NULL)
				print_field_type(out, k);
			fputs(", ", out);
			if (v != NULL)
				print_field_type(out, v);
			fputs(">", out);
		} else {
			if (fd->label ==
			    GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__LABEL__LABEL_REPEATED)
				fputs("repeated ", out);
			print_field_type(out, fd);
		}
		fprintf(out, " %s = %d;", fd->name ? fd->name : "?", fd->number);
		if (fd->has_oneof_index && (size_t)fd->oneof_index < m->n_oneof_decl &&
		    m->oneof_decl[fd->oneof_index]->name != NULL)
			fprintf(out, "  // oneof %s", m->oneof_decl[fd->oneof_index]->name);
		fputc('\n', out);
	}
	fputs("}\n", out);
	if (depth > 8)
		return;
	for (size_t i = 0; i < m->n_nested_type; i++) {
		const cli_message *n = m->nested_type[i];
		char nf[512];
		if ((n->options != NULL && n->options->map_entry) || n->name == NULL ||
		    join(nf, sizeof(nf), full, n->name) != 0)
			continue;
		fputc('\n', out);
		print_message(out, set, n, nf, depth + 1);
	}
	for (size_t i = 0; i < m->n_enum_type; i++) {
		char nf[512];
		if (m->enum_type[i]->name == NULL ||
		    join(nf, sizeof(nf), full, m->enum_type[i]->name) != 0)
			continue;
		fputc('\n', out);
		fprintf(out, "enum %s {\n", nf);
		for (size_t v = 0; v < m->enum_type[i]->n_value; v++)
			fprintf(out, "  %s = %d;\n", m->enum_type[i]->value[v]->name,
			        m->enum_type[i]->value[v]->number);
		fputs("}\n", out);
	}
}

static void print_method_line(FILE *out, const cli_method *m)
{
	fprintf(out, "  rpc %s(%s) returns (%s);\n", m->name, bare(m->input_type),
	        bare(m->output_type));
}

static void print_type_named(FILE *out, const cli_fdset *set, const char *type_name)
{
	cli_symbol sym;
	if (cli_find_symbol(set, type_name, &sym) && sym.message != NULL)
		print_message(out, set, sym.message, sym.full_name, 0);
	else
		fprintf(out, "// %s: not in the server's descriptors\n", bare(type_name));
}

void cli_print_symbol(FILE *out, const cli_fdset *set, const cli_symbol *sym)
{
	if (sym->method != NULL) {
		fprintf(out, "%s.%s:\n", sym->full_name, sym->method->name);
		print_method_line(out, sym->method);
		fputc('\n', out);
		print_type_named(out, set, sym->method->input_type);
		fputc('\n', out);
		print_type_named(out, set, sym->method->output_type);
	} else if (sym->service != NULL) {
		fprintf(out, "service %s {  // %s\n", sym->full_name,
		        sym->file->name ? sym->file->name : "?");
		for (size_t i = 0; i < sym->service->n_method; i++)
			print_method_line(out, sym->service->method[i]);
		fputs("}\n", out);
	} else if (sym->message != NULL) {
		print_message(out, set, sym->message, sym->full_name, 0);
	} else if (sym->enumeration != NULL) {
		fprintf(out, "enum %s {\n", sym->full_name);
		for (size_t v = 0; v < sym->enumeration->n_value; v++)
			fprintf(out, "  %s = %d;\n", sym->enumeration->value[v]->name,
			        sym->enumeration->value[v]->number);
		fputs("}\n", out);
	}
}
