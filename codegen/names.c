/*
 * names.c - the C and JSON names the plugin derives from proto names.
 *
 * The C names must be exactly those protoc-c gives the messages, since the
 * generated stubs refer to protoc-c's types and descriptors: a full name
 * "pkg.sub.Outer.Inner" becomes the type Pkg__Sub__Outer__Inner and the
 * lower form pkg__sub__outer__inner, each piece converted on its own
 * (ToCamel / CamelToLower in protoc-c's c_helpers.cc, 1.4).
 */
#include "pgen.h"

#include <ctype.h>
#include <string.h>

/* Convert one dot-separated piece and append it to `out`. */
typedef void (*pgen_piece_fn)(pgen_buf *out, const char *s, size_t n);

static void piece_camel(pgen_buf *out, const char *s, size_t n)
{
	int next_upper = 1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '_') {
			next_upper = 1;
		} else if (next_upper) {
			pgen_buf_putc(out, (char)toupper((unsigned char)s[i]));
			next_upper = 0;
		} else {
			pgen_buf_putc(out, s[i]);
		}
	}
}

static void piece_lower(pgen_buf *out, const char *s, size_t n)
{
	int was_upper = 1; /* no leading '_' */
	for (size_t i = 0; i < n; i++) {
		int is_upper = isupper((unsigned char)s[i]) != 0;
		if (is_upper) {
			if (!was_upper)
				pgen_buf_putc(out, '_');
			pgen_buf_putc(out, (char)tolower((unsigned char)s[i]));
		} else {
			pgen_buf_putc(out, s[i]);
		}
		was_upper = is_upper;
	}
}

static char *convert_full_name(pgen_arena *a, const char *full_name, pgen_piece_fn fn)
{
	pgen_buf out = {0};
	const char *p = full_name;
	while (*p != '\0') {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);
		if (n > 0) {
			if (out.len > 0)
				pgen_buf_puts(&out, "__");
			fn(&out, p, n);
		}
		p += n;
		if (*p == '.')
			p++;
	}
	char *r = NULL;
	if (!out.failed)
		r = pgen_strndup(a, out.data ? out.data : "", out.len);
	else
		a->failed = 1;
	pgen_buf_free(&out);
	return r;
}

char *pgen_c_type(pgen_arena *a, const char *full_name)
{
	return convert_full_name(a, full_name, piece_camel);
}

char *pgen_c_lower(pgen_arena *a, const char *full_name)
{
	return convert_full_name(a, full_name, piece_lower);
}

char *pgen_camel_to_lower(pgen_arena *a, const char *name)
{
	pgen_buf out = {0};
	piece_lower(&out, name, strlen(name));
	char *r = NULL;
	if (!out.failed)
		r = pgen_strndup(a, out.data ? out.data : "", out.len);
	else
		a->failed = 1;
	pgen_buf_free(&out);
	return r;
}

char *pgen_to_upper(pgen_arena *a, const char *s)
{
	char *r = pgen_strdup(a, s);
	if (r != NULL) {
		for (char *p = r; *p; p++)
			*p = (char)toupper((unsigned char)*p);
	}
	return r;
}

char *pgen_strip_proto(pgen_arena *a, const char *file)
{
	size_t n = strlen(file);
	if (n >= 6 && strcmp(file + n - 6, ".proto") == 0)
		n -= 6;
	return pgen_strndup(a, file, n);
}

char *pgen_json_name(pgen_arena *a, const char *field_name)
{
	size_t n = strlen(field_name);
	char *r = pgen_alloc(a, n + 1);
	if (r == NULL)
		return NULL;
	size_t j = 0;
	int up = 0;
	for (size_t i = 0; i < n; i++) {
		if (field_name[i] == '_') {
			up = 1;
		} else if (up) {
			r[j++] = (char)toupper((unsigned char)field_name[i]);
			up = 0;
		} else {
			r[j++] = field_name[i];
		}
	}
	r[j] = '\0';
	return r;
}

size_t pgen_utf8_len(const unsigned char *p)
{
	unsigned c = p[0];
	size_t n;
	unsigned min;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2, min = 0x80;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3, min = 0x800;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4, min = 0x10000;
	else
		return 0;
	unsigned cp = c & (0x3fu >> (n - 1));
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80) /* also stops at the NUL */
			return 0;
		cp = (cp << 6) | (p[i] & 0x3fu);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}
