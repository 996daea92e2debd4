/*
 * gw_json_write.c - the streaming JSON writer of the gateway: a growable
 * buffer with a sticky failure flag, string escaping, numbers, and the
 * AIP-193 error body (gw_json.h).
 *
 * Writes are unchecked one by one: the first failure marks the buffer and
 * everything after is dropped, so callers check once at the end. Strings
 * are scanned a run of plain bytes at a time, copied with one memcpy.
 */
#include "gw_json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "panthera/rpc/v1/rpc.pb-c.h"
#include "panthera/text.h"

#define BUF_MIN 1024

void gw_json_buf_init(gw_json_buf *b, size_t max)
{
	memset(b, 0, sizeof(*b));
	b->max = max;
}

void gw_json_buf_reset(gw_json_buf *b)
{
	b->len = 0;
	b->failed = 0;
}

void gw_json_buf_free(gw_json_buf *b)
{
	if (b == NULL)
		return;
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
	b->failed = 0;
}

rpc_status gw_json_buf_status(const gw_json_buf *b)
{
	return b->failed ? RPC_STATUS_RESOURCE_EXHAUSTED : RPC_STATUS_OK;
}

int gw_json_buf_grow(gw_json_buf *b, size_t extra)
{
	if (b->failed)
		return -1;
	if (extra > SIZE_MAX / 2 - b->len || (b->max != 0 && b->len + extra > b->max)) {
		b->failed = 2;
		return -1;
	}
	size_t need = b->len + extra;
	if (need <= b->cap)
		return 0;
	size_t cap = b->cap < BUF_MIN ? BUF_MIN : b->cap;
	while (cap < need)
		cap *= 2;
	if (b->max != 0 && cap > b->max)
		cap = b->max;
	char *p = realloc(b->data, cap);
	if (p == NULL) {
		b->failed = 1;
		return -1;
	}
	b->data = p;
	b->cap = cap;
	return 0;
}

static void put_char(gw_json_buf *b, char c)
{
	if (b->len < b->cap) {
		b->data[b->len++] = c;
		return;
	}
	gw_json_buf_put(b, &c, 1);
}

static void put_str(gw_json_buf *b, const char *s)
{
	gw_json_buf_put(b, s, strlen(s));
}

/*
 * Byte classes for escaping: 0 copies as is, 1 is ASCII needing an escape,
 * 2 starts a multi-byte sequence (checked, and U+2028/9 escaped), 3 can
 * never appear in UTF-8.
 */
static const unsigned char escape_class[256] = {
    /* 0x00 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    /* 0x10 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    /* 0x20 */ 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 0x30 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 0x40 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 0x50 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
    /* 0x60 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 0x70 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 0x80 */ 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
    /* 0x90 */ 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
    /* 0xA0 */ 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
    /* 0xB0 */ 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
    /* 0xC0 */ 3, 3, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    /* 0xD0 */ 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    /* 0xE0 */ 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    /* 0xF0 */ 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
};

static void put_escape(gw_json_buf *b, unsigned char c)
{
	static const char hex[] = "0123456789abcdef";
	char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
	switch (c) {
	case '"':
		gw_json_buf_put(b, "\\\"", 2);
		return;
	case '\\':
		gw_json_buf_put(b, "\\\\", 2);
		return;
	case '\n':
		gw_json_buf_put(b, "\\n", 2);
		return;
	case '\r':
		gw_json_buf_put(b, "\\r", 2);
		return;
	case '\t':
		gw_json_buf_put(b, "\\t", 2);
		return;
	case '\b':
		gw_json_buf_put(b, "\\b", 2);
		return;
	case '\f':
		gw_json_buf_put(b, "\\f", 2);
		return;
	default:
		gw_json_buf_put(b, e, sizeof(e));
	}
}

void gw_json_write_escaped(gw_json_buf *b, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t run = 0; /* start of the bytes not yet copied */
	size_t i = 0;
	while (i < n) {
		unsigned char cls = escape_class[p[i]];
		if (cls == 0) {
			i++;
			continue;
		}
		if (cls == 2) {
			int k = text_utf8_seq_n(s + i, n - i);
			if (k == 3 && p[i] == 0xE2 && p[i + 1] == 0x80 &&
			    (p[i + 2] == 0xA8 || p[i + 2] == 0xA9)) {
				/* U+2028/U+2029: valid JSON, but not JavaScript */
				gw_json_buf_put(b, s + run, i - run);
				gw_json_buf_put(b, p[i + 2] == 0xA8 ? "\\u2028" : "\\u2029", 6);
				i += 3;
				run = i;
				continue;
			}
			if (k > 0) {
				i += (size_t)k;
				continue;
			}
		}
		gw_json_buf_put(b, s + run, i - run);
		if (cls == 1)
			put_escape(b, p[i]);
		else
			gw_json_buf_put(b, "\\ufffd", 6);
		i++;
		run = i;
	}
	gw_json_buf_put(b, s + run, n - run);
}

void gw_json_write_string(gw_json_buf *b, const char *s, size_t n)
{
	/* Room for the common case up front: no escapes. */
	if (b->cap - b->len < n + 2 && gw_json_buf_grow(b, n + 2) != 0)
		return;
	put_char(b, '"');
	gw_json_write_escaped(b, s, n);
	put_char(b, '"');
}

void gw_json_write_uint(gw_json_buf *b, uint64_t v)
{
	char tmp[20];
	int k = sizeof(tmp);
	do {
		tmp[--k] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	gw_json_buf_put(b, tmp + k, sizeof(tmp) - (size_t)k);
}

void gw_json_write_int(gw_json_buf *b, int64_t v)
{
	if (v < 0) {
		put_char(b, '-');
		gw_json_write_uint(b, (uint64_t)0 - (uint64_t)v);
		return;
	}
	gw_json_write_uint(b, (uint64_t)v);
}

/*
 * Non-finite values are strings in the proto3 mapping; negative zero is
 * "-0.0", since parsers (jansson among them) read "-0" as the integer 0.
 * 1 when written.
 */
static int write_special(gw_json_buf *b, double v)
{
	if (v == 0 && signbit(v)) {
		put_str(b, "-0.0");
		return 1;
	}
	if (isnan(v)) {
		put_str(b, "\"NaN\"");
		return 1;
	}
	if (isinf(v)) {
		put_str(b, v > 0 ? "\"Infinity\"" : "\"-Infinity\"");
		return 1;
	}
	return 0;
}

void gw_json_write_double(gw_json_buf *b, double v)
{
	if (write_special(b, v))
		return;
	char tmp[32];
	int n = 0;
	/* The fewest significant digits that read back as v. */
	for (int prec = 15; prec <= 17; prec++) {
		n = snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
		if (strtod(tmp, NULL) == v)
			break;
	}
	if (n > 0 && (size_t)n < sizeof(tmp))
		gw_json_buf_put(b, tmp, (size_t)n);
}

void gw_json_write_float(gw_json_buf *b, float v)
{
	if (write_special(b, v))
		return;
	char tmp[32];
	int n = 0;
	for (int prec = 6; prec <= 9; prec++) {
		n = snprintf(tmp, sizeof(tmp), "%.*g", prec, (double)v);
		if (strtof(tmp, NULL) == v)
			break;
	}
	if (n > 0 && (size_t)n < sizeof(tmp))
		gw_json_buf_put(b, tmp, (size_t)n);
}

static void write_cstring(gw_json_buf *b, const char *s)
{
	s = s != NULL ? s : "";
	gw_json_write_string(b, s, strlen(s));
}

static void write_error_info(gw_json_buf *b, const char *reason, const char *domain,
                             const Google__Rpc__ErrorInfo *info)
{
	put_str(b, "{\"@type\":\"type.googleapis.com/google.rpc.ErrorInfo\",\"reason\":");
	write_cstring(b, reason);
	put_str(b, ",\"domain\":");
	write_cstring(b, domain != NULL && domain[0] != '\0' ? domain : "panthera.dev");
	if (info != NULL && info->n_metadata > 0 && info->metadata != NULL) {
		put_str(b, ",\"metadata\":{");
		int first = 1;
		for (size_t i = 0; i < info->n_metadata; i++) {
			const Google__Rpc__ErrorInfo__MetadataEntry *e = info->metadata[i];
			if (e == NULL)
				continue;
			if (!first)
				put_char(b, ',');
			first = 0;
			write_cstring(b, e->key);
			put_char(b, ':');
			write_cstring(b, e->value);
		}
		put_char(b, '}');
	}
	put_char(b, '}');
}

static void write_violation(gw_json_buf *b, const char *field, const char *description)
{
	put_str(b, "{\"field\":");
	write_cstring(b, field);
	put_str(b, ",\"description\":");
	write_cstring(b, description);
	put_char(b, '}');
}

/* The ErrorDetails of a reply, or NULL when `m` is anything else. Checked
 * by name so this file links without the generated descriptors. */
static const Panthera__Rpc__V1__ErrorDetails *error_details(const ProtobufCMessage *m)
{
	if (m == NULL || m->descriptor == NULL || m->descriptor->name == NULL ||
	    strcmp(m->descriptor->name, "panthera.rpc.v1.ErrorDetails") != 0)
		return NULL;
	return (const Panthera__Rpc__V1__ErrorDetails *)m;
}

rpc_status gw_json_write_error(gw_json_buf *b, const gw_json_error_reply *e)
{
	const Panthera__Rpc__V1__ErrorDetails *d = error_details(e->details);
	const Google__Rpc__ErrorInfo *info = d != NULL ? d->error_info : NULL;
	const Google__Rpc__BadRequest *bad = d != NULL ? d->bad_request : NULL;
	int http = e->http_status != 0 ? e->http_status : rpc_status_http(e->code);

	put_str(b, "{\"error\":{\"code\":");
	gw_json_write_int(b, http);
	put_str(b, ",\"status\":");
	write_cstring(b, rpc_status_name(e->code));
	put_str(b, ",\"message\":");
	write_cstring(b, e->message);
	put_str(b, ",\"details\":[");
	int first = 1;
	if (info != NULL && info->reason != NULL && info->reason[0] != '\0') {
		write_error_info(b, info->reason, info->domain, info);
		first = 0;
	} else if (e->reason != NULL && e->reason[0] != '\0') {
		write_error_info(b, e->reason, e->domain, NULL);
		first = 0;
	}
	size_t n_bad = bad != NULL && bad->field_violations != NULL ? bad->n_field_violations : 0;
	if (e->n_violations > 0 || n_bad > 0) {
		if (!first)
			put_char(b, ',');
		put_str(b, "{\"@type\":\"type.googleapis.com/google.rpc.BadRequest\","
		           "\"fieldViolations\":[");
		int vfirst = 1;
		for (size_t i = 0; i < e->n_violations; i++) {
			if (!vfirst)
				put_char(b, ',');
			vfirst = 0;
			write_violation(b, e->violations[i].field, e->violations[i].description);
		}
		for (size_t i = 0; i < n_bad; i++) {
			const Google__Rpc__BadRequest__FieldViolation *v = bad->field_violations[i];
			if (v == NULL)
				continue;
			if (!vfirst)
				put_char(b, ',');
			vfirst = 0;
			write_violation(b, v->field, v->description);
		}
		put_str(b, "]}");
	}
	put_str(b, "]}}");
	return gw_json_buf_status(b);
}

rpc_status gw_json_write_decode_error(gw_json_buf *b, const gw_json_error *err)
{
	char message[GW_JSON_FIELD_MAX + GW_JSON_DESCRIPTION_MAX + 4];
	gw_json_violation v = {err->field, err->description};
	gw_json_error_reply e = {.code = err->code, .message = err->description};
	if (err->field[0] != '\0') {
		snprintf(message, sizeof(message), "%s: %s", err->field, err->description);
		e.message = message;
		e.violations = &v;
		e.n_violations = 1;
	}
	return gw_json_write_error(b, &e);
}
