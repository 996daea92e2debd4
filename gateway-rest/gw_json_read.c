/*
 * gw_json_read.c - the gateway's JSON pull reader (gw_json.h): tokens out
 * of a byte range, checked as they are read, with no tree and no
 * allocation. The decoder (gw_json.c) walks a body with it straight into
 * the message.
 *
 * Why not jansson: parsing a typical 600-byte body into jansson's tree took
 * about 90% of a decode (one malloc per value, a hash table per object),
 * and the tree of a hostile 1 MiB body weighs some 20 MiB; this reader
 * keeps nothing, and the decoder allocates only what the message holds,
 * from the request's arena (bench/gateway/json_bench.c measures both).
 * fuzz_gateway_json checks it against jansson: same inputs accepted, same
 * string values.
 *
 * Every read is bounded by `end`; no read depends on a NUL terminator.
 */
#include "gw_json.h"

#include "panthera/text.h"

static int reader_fail(gw_json_reader *r, const char *at, const char *why)
{
	if (r->error == NULL) {
		r->error = why;
		r->error_at = (size_t)(at - r->start);
	}
	r->p = r->end;
	return -1;
}

static const char *skip_space(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
		p++;
	return p;
}

void gw_json_reader_init(gw_json_reader *r, const char *s, size_t n)
{
	r->start = r->p = s;
	r->end = s + n;
	r->error = NULL;
	r->error_at = 0;
}

static int hex4(const char *p, unsigned *out)
{
	unsigned v = 0;
	for (int i = 0; i < 4; i++) {
		char c = p[i];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

/* r->p is at the opening quote. */
static int read_string(gw_json_reader *r, gw_json_token *t)
{
	const char *p = r->p + 1, *end = r->end, *begin = p;
	int escaped = 0;
	for (;;) {
		/* The common run: printable ASCII. */
		while (p < end && (unsigned char)*p >= 0x20 && (unsigned char)*p < 0x80 &&
		       *p != '"' && *p != '\\')
			p++;
		if (p >= end)
			return reader_fail(r, p, "unterminated string");
		unsigned char c = (unsigned char)*p;
		if (c == '"')
			break;
		if (c < 0x20)
			return reader_fail(r, p, "control character in a string");
		if (c >= 0x80) {
			int k = text_utf8_seq_n(p, (size_t)(end - p));
			if (k <= 0)
				return reader_fail(r, p, "invalid UTF-8 in a string");
			p += k;
			continue;
		}
		/* A backslash. */
		escaped = 1;
		if (end - p < 2)
			return reader_fail(r, p, "unterminated string");
		switch (p[1]) {
		case '"':
		case '\\':
		case '/':
		case 'b':
		case 'f':
		case 'n':
		case 'r':
		case 't':
			p += 2;
			continue;
		case 'u':
			break;
		default:
			return reader_fail(r, p, "invalid escape in a string");
		}
		unsigned cp, lo;
		if (end - p < 6 || hex4(p + 2, &cp) != 0)
			return reader_fail(r, p, "invalid \\u escape");
		if (cp == 0)
			return reader_fail(r, p, "\\u0000 is not allowed in a string");
		if (cp >= 0xDC00 && cp <= 0xDFFF)
			return reader_fail(r, p, "unpaired surrogate in a \\u escape");
		if (cp >= 0xD800 && cp <= 0xDBFF) {
			if (end - p < 12 || p[6] != '\\' || p[7] != 'u' || hex4(p + 8, &lo) != 0 ||
			    lo < 0xDC00 || lo > 0xDFFF)
				return reader_fail(r, p, "unpaired surrogate in a \\u escape");
			p += 12;
		} else {
			p += 6;
		}
	}
	t->kind = GW_JSON_STRING;
	t->text = begin;
	t->len = (size_t)(p - begin);
	t->escaped = escaped;
	t->integer = 0;
	r->p = p + 1;
	return 0;
}

static int is_digit(const char *p, const char *end)
{
	return p < end && *p >= '0' && *p <= '9';
}

/* r->p is at '-' or a digit. */
static int read_number(gw_json_reader *r, gw_json_token *t)
{
	const char *p = r->p, *end = r->end;
	int integer = 1;
	if (*p == '-')
		p++;
	if (!is_digit(p, end))
		return reader_fail(r, p, "invalid number");
	if (*p == '0')
		p++;
	else
		while (is_digit(p, end))
			p++;
	if (p < end && *p == '.') {
		integer = 0;
		p++;
		if (!is_digit(p, end))
			return reader_fail(r, p, "invalid number");
		while (is_digit(p, end))
			p++;
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		integer = 0;
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		if (!is_digit(p, end))
			return reader_fail(r, p, "invalid number");
		while (is_digit(p, end))
			p++;
	}
	t->kind = GW_JSON_NUMBER;
	t->text = r->p;
	t->len = (size_t)(p - r->p);
	t->escaped = 0;
	t->integer = integer;
	r->p = p;
	return 0;
}

static int read_literal(gw_json_reader *r, gw_json_token *t, const char *word, size_t n,
                        gw_json_kind kind)
{
	if ((size_t)(r->end - r->p) < n || memcmp(r->p, word, n) != 0)
		return reader_fail(r, r->p, "invalid literal");
	t->kind = kind;
	t->text = r->p;
	t->len = n;
	t->escaped = 0;
	t->integer = 0;
	r->p += n;
	return 0;
}

int gw_json_read_value(gw_json_reader *r, gw_json_token *t)
{
	t->kind = GW_JSON_NONE;
	if (r->error != NULL)
		return -1;
	r->p = skip_space(r->p, r->end);
	if (r->p >= r->end)
		return reader_fail(r, r->p, "unexpected end of input: a value was expected");
	switch (*r->p) {
	case '{':
	case '[':
		t->kind = *r->p == '{' ? GW_JSON_OBJECT : GW_JSON_ARRAY;
		t->text = r->p;
		t->len = 1;
		t->escaped = t->integer = 0;
		r->p++;
		return 0;
	case '"':
		return read_string(r, t);
	case 't':
		return read_literal(r, t, "true", 4, GW_JSON_TRUE);
	case 'f':
		return read_literal(r, t, "false", 5, GW_JSON_FALSE);
	case 'n':
		return read_literal(r, t, "null", 4, GW_JSON_NULL);
	default:
		if (*r->p == '-' || (*r->p >= '0' && *r->p <= '9'))
			return read_number(r, t);
		return reader_fail(r, r->p, "a value was expected");
	}
}

int gw_json_read_key(gw_json_reader *r, int *first, gw_json_token *key)
{
	if (r->error != NULL)
		return -1;
	const char *p = skip_space(r->p, r->end);
	if (p < r->end && *p == '}') {
		r->p = p + 1;
		*first = 0;
		return 0;
	}
	if (!*first) {
		if (p >= r->end || *p != ',')
			return reader_fail(r, p, "',' or '}' was expected");
		p = skip_space(p + 1, r->end);
	}
	*first = 0;
	if (p >= r->end || *p != '"')
		return reader_fail(r, p, "a string key was expected");
	r->p = p;
	if (read_string(r, key) != 0)
		return -1;
	p = skip_space(r->p, r->end);
	if (p >= r->end || *p != ':')
		return reader_fail(r, p, "':' was expected");
	r->p = p + 1;
	return 1;
}

int gw_json_read_next(gw_json_reader *r, int *first)
{
	if (r->error != NULL)
		return -1;
	const char *p = skip_space(r->p, r->end);
	if (p < r->end && *p == ']') {
		r->p = p + 1;
		*first = 0;
		return 0;
	}
	if (!*first) {
		if (p >= r->end || *p != ',')
			return reader_fail(r, p, "',' or ']' was expected");
		p++;
	}
	*first = 0;
	r->p = p;
	return 1;
}

int gw_json_skip(gw_json_reader *r, const gw_json_token *t, unsigned max_depth)
{
	if (t->kind != GW_JSON_OBJECT && t->kind != GW_JSON_ARRAY)
		return r->error != NULL ? -1 : 0;
	if (max_depth == 0)
		return reader_fail(r, t->text, "nested too deep");
	int first = 1, k;
	gw_json_token key, v;
	for (;;) {
		if (t->kind == GW_JSON_OBJECT)
			k = gw_json_read_key(r, &first, &key);
		else
			k = gw_json_read_next(r, &first);
		if (k <= 0)
			return k;
		if (gw_json_read_value(r, &v) != 0 || gw_json_skip(r, &v, max_depth - 1) != 0)
			return -1;
	}
}

int gw_json_read_end(gw_json_reader *r)
{
	if (r->error != NULL)
		return -1;
	r->p = skip_space(r->p, r->end);
	if (r->p != r->end)
		return reader_fail(r, r->p, "text after the JSON value");
	return 0;
}

void gw_json_reader_position(const gw_json_reader *r, size_t at, int *line, int *column)
{
	size_t n = (size_t)(r->end - r->start);
	if (at > n)
		at = n;
	int l = 1;
	size_t line_start = 0;
	for (size_t i = 0; i < at; i++) {
		if (r->start[i] == '\n') {
			l++;
			line_start = i + 1;
		}
	}
	*line = l;
	*column = (int)(at - line_start + 1);
}

size_t gw_json_unescape(const char *raw, size_t n, char *out)
{
	size_t i = 0, o = 0;
	while (i < n) {
		if (raw[i] != '\\' || i + 1 >= n) {
			out[o++] = raw[i++];
			continue;
		}
		char e = raw[i + 1];
		unsigned cp, lo;
		switch (e) {
		case 'b':
			out[o++] = '\b';
			break;
		case 'f':
			out[o++] = '\f';
			break;
		case 'n':
			out[o++] = '\n';
			break;
		case 'r':
			out[o++] = '\r';
			break;
		case 't':
			out[o++] = '\t';
			break;
		case 'u':
			if (n - i < 6 || hex4(raw + i + 2, &cp) != 0) {
				out[o++] = raw[i++]; /* not an escape the reader let through */
				continue;
			}
			if (cp >= 0xD800 && cp <= 0xDBFF && n - i >= 12 && raw[i + 6] == '\\' &&
			    raw[i + 7] == 'u' && hex4(raw + i + 8, &lo) == 0 && lo >= 0xDC00 &&
			    lo <= 0xDFFF) {
				cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
				i += 6;
			}
			/* 6 bytes of text give at most 4 of UTF-8 (12 for a pair). */
			o += text_utf8_put(cp, out + o);
			i += 6;
			continue;
		default: /* '"', '\\', '/' */
			out[o++] = e;
			break;
		}
		i += 2;
	}
	return o;
}
