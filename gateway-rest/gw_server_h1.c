/*
 * gw_server_h1.c - what the HTTP server checks on its own, as pure code over
 * bytes: the head of an HTTP/1 request scanned again for what h2o 2.2.5
 * lets through (request smuggling), and the default error body.
 *
 * Why scan again: h2o's HTTP/1 parser takes the FIRST Content-Length and
 * ignores later ones, and lets Transfer-Encoding win over Content-Length;
 * neither field is left in the parsed headers, so only the bytes tell. A
 * proxy in front that reads the same bytes the other way would see two
 * requests where we see one. The scan runs when h2o has parsed the head,
 * on the bytes still at the start of the connection's input buffer.
 *
 * No allocation, no state; bounded by the length given.
 */
#include <stdio.h>
#include <string.h>

#include "gw_server.h"

static int is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int name_is(const char *name, size_t len, const char *lower)
{
	size_t n = strlen(lower);
	if (len != n)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		if (c != (unsigned char)lower[i])
			return 0;
	}
	return 1;
}

/* Digits only; 0 and *out, or -1 (empty, another byte, overflow). */
static int parse_length(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	if (n == 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		unsigned d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

static int refuse(gw_h1_head *h, const char *reason, const char *message)
{
	h->reason = reason;
	h->message = message;
	return 400;
}

int gw_server_scan_h1_head(const char *buf, size_t len, gw_h1_head *h)
{
	memset(h, 0, sizeof(*h));
	size_t pos = 0;
	while (pos < len && (buf[pos] == '\r' || buf[pos] == '\n'))
		pos++;
	/* the request line */
	const char *lf = pos < len ? memchr(buf + pos, '\n', len - pos) : NULL;
	if (lf == NULL)
		return refuse(h, "INVALID_REQUEST_HEAD", "the request head is incomplete");
	pos = (size_t)(lf - buf) + 1;
	for (;;) {
		lf = pos < len ? memchr(buf + pos, '\n', len - pos) : NULL;
		if (lf == NULL)
			return refuse(h, "INVALID_REQUEST_HEAD", "the request head is incomplete");
		const char *line = buf + pos;
		size_t n = (size_t)(lf - line);
		pos = (size_t)(lf - buf) + 1;
		if (n > 0 && line[n - 1] == '\r')
			n--;
		if (n == 0)
			break;
		if (line[0] == ' ' || line[0] == '\t')
			return refuse(h, "INVALID_REQUEST_HEAD",
			              "folded header lines are not accepted");
		const char *colon = memchr(line, ':', n);
		if (colon == NULL || colon == line)
			return refuse(h, "INVALID_REQUEST_HEAD", "a header line has no field name");
		size_t name_len = (size_t)(colon - line);
		for (size_t i = 0; i < name_len; i++)
			if (!is_tchar((unsigned char)line[i]))
				return refuse(h, "INVALID_REQUEST_HEAD",
				              "a header field name is not an HTTP token");
		const char *v = colon + 1, *end = line + n;
		while (v < end && (*v == ' ' || *v == '\t'))
			v++;
		while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		h->n_fields++;
		if (name_is(line, name_len, "content-length")) {
			uint64_t cl;
			if (parse_length(v, (size_t)(end - v), &cl) != 0)
				return refuse(h, "INVALID_CONTENT_LENGTH",
				              "Content-Length is not a decimal number");
			if (h->has_content_length && cl != h->content_length)
				return refuse(h, "INVALID_CONTENT_LENGTH",
				              "Content-Length fields disagree");
			h->has_content_length = 1;
			h->content_length = cl;
		} else if (name_is(line, name_len, "transfer-encoding")) {
			if (h->has_transfer_encoding)
				return refuse(h, "INVALID_REQUEST_HEAD",
				              "more than one Transfer-Encoding field");
			h->has_transfer_encoding = 1;
		}
	}
	if (h->has_content_length && h->has_transfer_encoding)
		return refuse(h, "INVALID_REQUEST_HEAD",
		              "a request may not carry both Content-Length and Transfer-Encoding");
	h->head_len = pos;
	return 0;
}

/* The canonical code an error body names for an HTTP status the server
 * answers (the gateway's router maps its own the same way). */
static const char *status_name(int status)
{
	switch (status) {
	case 400:
	case 415:
	case 417:
		return "INVALID_ARGUMENT";
	case 404:
		return "NOT_FOUND";
	case 405:
	case 501:
		return "UNIMPLEMENTED";
	case 408:
		return "DEADLINE_EXCEEDED";
	case 413:
	case 414:
	case 431:
		return "RESOURCE_EXHAUSTED";
	case 503:
		return "UNAVAILABLE";
	default:
		return "INTERNAL";
	}
}

/* Append s as JSON string contents; returns the new length, or cap + 1
 * when it does not fit. */
static size_t put_escaped(char *buf, size_t at, size_t cap, const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		char esc[8];
		size_t n;
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			n = 2;
		} else if (c < 0x20 || c == 0x7f) {
			n = (size_t)snprintf(esc, sizeof(esc), "\\u%04x", c);
		} else if (c >= 0x80) {
			esc[0] = '?'; /* the text is meant to be ASCII: never invalid JSON */
			n = 1;
		} else {
			esc[0] = (char)c;
			n = 1;
		}
		if (at > cap || cap - at < n)
			return cap + 1;
		memcpy(buf + at, esc, n);
		at += n;
	}
	return at;
}

static size_t put_raw(char *buf, size_t at, size_t cap, const char *s)
{
	size_t n = strlen(s);
	if (at > cap || cap - at < n)
		return cap + 1;
	memcpy(buf + at, s, n);
	return at + n;
}

size_t gw_server_default_error_body(int status, const char *reason, const char *message, char *buf,
                                    size_t cap, void *arg)
{
	(void)arg;
	char code[32];
	snprintf(code, sizeof(code), "%d", status);
	size_t at = 0;
	at = put_raw(buf, at, cap, "{\"error\":{\"code\":");
	at = put_raw(buf, at, cap, code);
	at = put_raw(buf, at, cap, ",\"status\":\"");
	at = put_raw(buf, at, cap, status_name(status));
	at = put_raw(buf, at, cap, "\",\"message\":\"");
	at = put_escaped(buf, at, cap, message != NULL ? message : "");
	at = put_raw(buf, at, cap, "\"");
	if (reason != NULL && reason[0] != '\0') {
		at =
		    put_raw(buf, at, cap,
		            ",\"details\":[{\"@type\":\"type.googleapis.com/google.rpc.ErrorInfo\","
		            "\"reason\":\"");
		at = put_escaped(buf, at, cap, reason);
		at = put_raw(buf, at, cap, "\",\"domain\":\"panthera.dev\"}]");
	}
	at = put_raw(buf, at, cap, "}}");
	return at;
}
