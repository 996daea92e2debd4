/*
 * sink.c - where emails go: the choice of sink from a URL, the log sink,
 * and the checks every sink relies on (addresses, the From setting).
 *
 * The log sink is the default of a development machine: each email becomes
 * one JSON line (event "notifications.email") with its recipient, subject
 * and body; a secret body (SendEmail) is never written, only its length.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "notif_internal.h"
#include "panthera/log.h"
#include "panthera/text.h"

uint64_t notifications_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

const char *notifications_check_address(const char *s)
{
	static const char bad[] = "must be an email address (printable ASCII, at most 254 "
	                          "characters, local@domain)";
	if (s == NULL)
		return bad;
	size_t n = strlen(s);
	if (n < 3 || n > 254)
		return bad;
	const char *at = strchr(s, '@');
	if (at == NULL || at == s || at - s > 64 || strchr(at + 1, '@') != NULL)
		return bad;
	const char *domain = at + 1;
	size_t dn = strlen(domain);
	if (dn < 1 || domain[0] == '.' || domain[dn - 1] == '.' || strstr(domain, "..") != NULL)
		return bad;
	for (const char *p = s; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;
		if (c <= 0x20 || c >= 0x7f || strchr("<>()[],;:\"\\", c) != NULL)
			return bad;
	}
	return NULL;
}

int notif_parse_from(const char *from, char *name, size_t name_cap, char *addr, size_t addr_cap)
{
	if (from == NULL || text_chars(from, 512, 0) < 0)
		return -1; /* control characters (CR, LF) or not UTF-8 */
	const char *lt = strchr(from, '<');
	const char *a = from, *a_end = from + strlen(from);
	const char *n_end = from;
	if (lt != NULL) {
		const char *gt = strchr(lt, '>');
		if (gt == NULL || gt[1] != '\0')
			return -1;
		a = lt + 1;
		a_end = gt;
		n_end = lt;
	}
	while (n_end > from && n_end[-1] == ' ')
		n_end--;
	size_t nl = (size_t)(n_end - from), al = (size_t)(a_end - a);
	if (nl >= name_cap || al >= addr_cap)
		return -1;
	memcpy(name, from, nl);
	name[nl] = '\0';
	memcpy(addr, a, al);
	addr[al] = '\0';
	if (strchr(name, '"') != NULL || strchr(name, '\\') != NULL || strchr(name, '>') != NULL)
		return -1;
	return notifications_check_address(addr) == NULL ? 0 : -1;
}

/* ---- the log sink ---- */

typedef struct log_sink {
	notifications_sink base;
	char from[256];
} log_sink;

static rpc_status log_send(notifications_sink *sink, const notifications_mail *mail, char *err,
                           size_t errlen)
{
	log_sink *s = (log_sink *)sink;
	const char *why = notifications_check_address(mail->to);
	if (why == NULL && text_chars(mail->subject, 998, 0) < 0)
		why = "the subject must be one line of UTF-8 without control characters";
	if (why != NULL) {
		snprintf(err, errlen, "%s", why);
		return RPC_STATUS_INVALID_ARGUMENT;
	}
	if (mail->secret)
		log_write(LOG_INFO, NULL, "notifications.email",
		          "from=%s to=%s subject=%s body=(secret, %zu bytes, not logged)", s->from,
		          mail->to, mail->subject, strlen(mail->body ? mail->body : ""));
	else
		log_write(LOG_INFO, NULL, "notifications.email", "from=%s to=%s subject=%s body=%s",
		          s->from, mail->to, mail->subject, mail->body ? mail->body : "");
	return RPC_STATUS_OK;
}

static void log_destroy(notifications_sink *sink)
{
	free(sink);
}

static rpc_status log_sink_open(notifications_sink **out, const char *from)
{
	log_sink *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	s->base.send = log_send;
	s->base.destroy = log_destroy;
	snprintf(s->from, sizeof(s->from), "%s", from);
	*out = &s->base;
	return RPC_STATUS_OK;
}

/* ---- choosing ---- */

rpc_status notifications_sink_open(notifications_sink **out, const char *smtp_url, const char *from,
                                   uint32_t timeout_ms)
{
	*out = NULL;
	char name[256], addr[256];
	if (from == NULL)
		from = NOTIFICATIONS_DEFAULT_FROM;
	if (notif_parse_from(from, name, sizeof(name), addr, sizeof(addr)) != 0)
		return RPC_STATUS_INVALID_ARGUMENT;
	if (smtp_url == NULL)
		return log_sink_open(out, from);
	return notif_smtp_sink_open(out, smtp_url, from,
	                            timeout_ms ? timeout_ms : NOTIF_DEFAULT_TIMEOUT_MS);
}

void notifications_sink_destroy(notifications_sink *sink)
{
	if (sink != NULL && sink->destroy != NULL)
		sink->destroy(sink);
}

rpc_status notifications_sink_send(notifications_sink *sink, const notifications_mail *mail,
                                   char *err, size_t errlen)
{
	if (errlen > 0)
		err[0] = '\0';
	if (sink == NULL || sink->send == NULL || mail == NULL || mail->to == NULL ||
	    mail->subject == NULL || mail->body == NULL) {
		snprintf(err, errlen, "no sink or no mail");
		return RPC_STATUS_INVALID_ARGUMENT;
	}
	return sink->send(sink, mail, err, errlen);
}
