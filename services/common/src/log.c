/*
 * log.c - JSON-lines logging; see log.h.
 */
#include "panthera/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_int log_min = LOG_INFO;

void log_set_level(log_level min)
{
	atomic_store(&log_min, (int)min);
}

int log_level_parse(const char *s, log_level *out)
{
	static const char *const names[] = {"debug", "info", "warn", "error"};
	for (int i = 0; s != NULL && i < 4; i++) {
		if (strcmp(s, names[i]) == 0) {
			*out = (log_level)i;
			return 0;
		}
	}
	return -1;
}

/* Append `s` as JSON string content to buf[*n..cap), escaping; cut when full. */
static void put_json(char *buf, size_t *n, size_t cap, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p && *n + 7 < cap; p++) {
		unsigned char c = *p;
		if (c == '"' || c == '\\') {
			buf[(*n)++] = '\\';
			buf[(*n)++] = (char)c;
		} else if (c == '\n' || c == '\t' || c == '\r') {
			buf[(*n)++] = '\\';
			buf[(*n)++] = c == '\n' ? 'n' : c == '\t' ? 't' : 'r';
		} else if (c < 0x20) {
			*n += (size_t)snprintf(buf + *n, cap - *n, "\\u%04x", c);
		} else {
			buf[(*n)++] = (char)c;
		}
	}
}

static void put_raw(char *buf, size_t *n, size_t cap, const char *s)
{
	size_t l = strlen(s);
	if (*n + l < cap) {
		memcpy(buf + *n, s, l);
		*n += l;
	}
}

void log_write(log_level level, const char *request_id, const char *event, const char *fmt, ...)
{
	static const char *const names[] = {"debug", "info", "warn", "error"};
	if ((int)level < atomic_load(&log_min) || (unsigned)level > LOG_ERROR)
		return;
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0)
		msg[0] = '\0';
	va_end(ap);

	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	char line[4096 + 512];
	size_t n = (size_t)snprintf(
	    line, sizeof(line),
	    "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"level\":\"%s\",\"event\":\"",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	    ts.tv_nsec / 1000000L, names[level]);
	size_t cap = sizeof(line) - 3; /* room for "}\n" */
	put_json(line, &n, cap, event ? event : "");
	if (request_id != NULL) {
		put_raw(line, &n, cap, "\",\"request_id\":\"");
		put_json(line, &n, cap, request_id);
	}
	put_raw(line, &n, cap, "\",\"msg\":\"");
	put_json(line, &n, cap, msg);
	put_raw(line, &n, cap, "\"");
	line[n++] = '}';
	line[n++] = '\n';
	ssize_t w = write(STDERR_FILENO, line, n);
	(void)w; /* nowhere left to report a failed log write */
}
