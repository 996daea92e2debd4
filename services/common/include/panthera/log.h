/*
 * log.h - JSON-lines logging for Panthera's processes.
 *
 * One line per event on standard error, written with a single write(2) so
 * lines from several threads never interleave:
 *   {"ts":"2026-11-23T16:30:00.123Z","level":"info","event":"db.connect",
 *    "request_id":"...","msg":"..."}
 * `event` is a short dotted name to filter on; `msg` is for people. Never
 * log a password, a token, a hash or a request body: callers log facts
 * about them (lengths, ids) instead.
 *
 * Thread-safe. log_set_level() is configuration, called once at start.
 */
#ifndef PANTHERA_LOG_H
#define PANTHERA_LOG_H

typedef enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 } log_level;

/* Lines below `min` are dropped. Default LOG_INFO. */
void log_set_level(log_level min);

/* Parse "debug", "info", "warn" or "error"; returns 0 and sets *out, or -1. */
int log_level_parse(const char *s, log_level *out);

/* Write one line. `request_id` may be NULL. The message is cut at 2 KiB. */
void log_write(log_level level, const char *request_id, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif /* PANTHERA_LOG_H */
