/*
 * smtp.c - the SMTP sink: a minimal SMTP client (RFC 5321) over one TCP
 * connection per email, for a relay such as a local MTA.
 *
 * One exchange: the 220 greeting, EHLO (HELO when EHLO is refused), MAIL
 * FROM, RCPT TO, DATA, the message, QUIT. Every reply is read whole
 * (multi-line replies included, each line bounded) and its code checked:
 * 2xx/3xx as expected goes on; 4xx is a transient failure (UNAVAILABLE:
 * retry later), 5xx a refusal for good (FAILED_PRECONDITION); anything
 * else is a broken server (UNAVAILABLE). The connect and every read or
 * write wait at most timeout_ms of silence and never past the mail's
 * deadline; a raised cancel flag ends the wait within 100 ms.
 *
 * The message: From, To, Subject (RFC 2047 encoded words when not ASCII),
 * Date, Message-ID, MIME-Version and a text/plain UTF-8 body; lines end in
 * CRLF, are cut before 998 bytes, and a line starting with '.' gets a
 * second one (dot-stuffing), so the body can never end the DATA early.
 * Addresses and the subject are refused when they hold CR, LF or another
 * control character: no header can be injected. No TLS, no AUTH: a relay
 * on a trusted network is expected.
 *
 * Thread-safety: the sink is read-only after open; each send has its own
 * connection, so any number of threads may send at once.
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "notif_internal.h"
#include "panthera/ids.h"
#include "panthera/text.h"

#define SMTP_LINE_MAX    2048 /* one reply line, CRLF included */
#define SMTP_REPLY_LINES 64   /* lines of one multi-line reply */
#define SMTP_SUBJECT_MAX 900  /* bytes: "Subject: " and it fit a 998-byte line */
#define SMTP_BODY_MAX    (1u << 20)
#define SMTP_POLL_MS     100

typedef struct smtp_sink {
	notifications_sink base;
	char host[256]; /* as getaddrinfo takes it (no brackets) */
	char port[8];
	char where[280];         /* "host:port", for messages */
	char from_name[256];     /* display name, "" when none */
	char from_addr[256];     /* the envelope sender */
	const char *from_domain; /* inside from_addr */
	char helo[256];
	uint32_t timeout_ms;
} smtp_sink;

/* One exchange. */
typedef struct smtp_conn {
	smtp_sink *s;
	const notifications_mail *mail;
	int fd;
	char in[SMTP_LINE_MAX + 1];
	size_t in_len;
	int ehlo;         /* reading the EHLO reply: look for extensions */
	int has_8bitmime; /* the server said 8BITMIME */
	char text[256];   /* the last reply line, printable ASCII */
	char *err;
	size_t errlen;
} smtp_conn;

/* ---- waiting, with timeouts and the cancel flag ---- */

/* When the current operation must end: timeout_ms from now, or the mail's
 * deadline when sooner. */
static uint64_t op_deadline(const smtp_conn *c)
{
	uint64_t until = notifications_now_ms() + c->s->timeout_ms;
	if (c->mail->deadline_ms != 0 && c->mail->deadline_ms < until)
		until = c->mail->deadline_ms;
	return until;
}

static rpc_status wait_fd(smtp_conn *c, short events, uint64_t until, const char *what)
{
	for (;;) {
		if (c->mail->cancel != NULL && atomic_load(c->mail->cancel)) {
			snprintf(c->err, c->errlen, "smtp %s: cancelled during %s", c->s->where,
			         what);
			return RPC_STATUS_CANCELLED;
		}
		uint64_t now = notifications_now_ms();
		if (now >= until) {
			snprintf(c->err, c->errlen, "smtp %s: timed out during %s", c->s->where,
			         what);
			return RPC_STATUS_DEADLINE_EXCEEDED;
		}
		uint64_t left = until - now;
		struct pollfd p = {.fd = c->fd, .events = events};
		int n = poll(&p, 1, left < SMTP_POLL_MS ? (int)left : SMTP_POLL_MS);
		if (n > 0)
			return RPC_STATUS_OK; /* ready, or an error the next call reports */
		if (n < 0 && errno != EINTR) {
			snprintf(c->err, c->errlen, "smtp %s: poll: %s", c->s->where,
			         strerror(errno));
			return RPC_STATUS_UNAVAILABLE;
		}
	}
}

static rpc_status connect_one(smtp_conn *c, const struct addrinfo *ai, uint64_t until, int *err)
{
	c->fd =
	    socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
	if (c->fd < 0) {
		*err = errno;
		return RPC_STATUS_UNAVAILABLE;
	}
	if (connect(c->fd, ai->ai_addr, ai->ai_addrlen) == 0)
		return RPC_STATUS_OK;
	if (errno != EINPROGRESS) {
		*err = errno;
		goto fail;
	}
	rpc_status st = wait_fd(c, POLLOUT, until, "connect");
	if (st != RPC_STATUS_OK) {
		close(c->fd);
		c->fd = -1;
		return st;
	}
	int so = 0;
	socklen_t len = sizeof(so);
	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &so, &len) != 0)
		so = errno;
	if (so == 0)
		return RPC_STATUS_OK;
	*err = so;
fail:
	close(c->fd);
	c->fd = -1;
	return RPC_STATUS_UNAVAILABLE;
}

static rpc_status smtp_connect(smtp_conn *c)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res = NULL;
	int gai = getaddrinfo(c->s->host, c->s->port, &hints, &res);
	if (gai != 0) {
		snprintf(c->err, c->errlen, "smtp %s: cannot resolve the host: %s", c->s->where,
		         gai_strerror(gai));
		return RPC_STATUS_UNAVAILABLE;
	}
	uint64_t until = op_deadline(c);
	rpc_status st = RPC_STATUS_UNAVAILABLE;
	int err = ECONNREFUSED;
	for (const struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
		st = connect_one(c, ai, until, &err);
		if (st == RPC_STATUS_OK || st == RPC_STATUS_CANCELLED ||
		    st == RPC_STATUS_DEADLINE_EXCEEDED)
			break;
	}
	freeaddrinfo(res);
	if (st == RPC_STATUS_UNAVAILABLE)
		snprintf(c->err, c->errlen, "smtp %s: cannot connect: %s", c->s->where,
		         strerror(err));
	return st;
}

/* ---- writing and reading ---- */

static rpc_status send_all(smtp_conn *c, const char *data, size_t len, const char *what)
{
	uint64_t until = op_deadline(c);
	while (len > 0) {
		ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			data += n;
			len -= (size_t)n;
			until = op_deadline(c); /* the timeout is for silence, not for size */
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			rpc_status st = wait_fd(c, POLLOUT, until, what);
			if (st != RPC_STATUS_OK)
				return st;
			continue;
		}
		snprintf(c->err, c->errlen, "smtp %s: sending %s: %s", c->s->where, what,
		         n < 0 ? strerror(errno) : "nothing written");
		return RPC_STATUS_UNAVAILABLE;
	}
	return RPC_STATUS_OK;
}

/* Take one line (without its CRLF) from the input buffer into line[],
 * reading more when needed. */
static rpc_status read_line(smtp_conn *c, char *line, size_t cap, const char *what)
{
	uint64_t until = op_deadline(c);
	for (;;) {
		char *nl = memchr(c->in, '\n', c->in_len);
		if (nl != NULL) {
			size_t n = (size_t)(nl - c->in);
			size_t keep = n > 0 && c->in[n - 1] == '\r' ? n - 1 : n;
			if (keep >= cap)
				keep = cap - 1;
			memcpy(line, c->in, keep);
			line[keep] = '\0';
			memmove(c->in, nl + 1, c->in_len - n - 1);
			c->in_len -= n + 1;
			return RPC_STATUS_OK;
		}
		if (c->in_len >= SMTP_LINE_MAX) {
			snprintf(c->err, c->errlen, "smtp %s: a reply line to %s is too long",
			         c->s->where, what);
			return RPC_STATUS_UNAVAILABLE;
		}
		ssize_t n = recv(c->fd, c->in + c->in_len, SMTP_LINE_MAX - c->in_len, MSG_DONTWAIT);
		if (n > 0) {
			c->in_len += (size_t)n;
			until = op_deadline(c);
			continue;
		}
		if (n == 0) {
			snprintf(c->err, c->errlen,
			         "smtp %s: the server closed the connection (%s)", c->s->where,
			         what);
			return RPC_STATUS_UNAVAILABLE;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			snprintf(c->err, c->errlen, "smtp %s: reading the reply to %s: %s",
			         c->s->where, what, strerror(errno));
			return RPC_STATUS_UNAVAILABLE;
		}
		rpc_status st = wait_fd(c, POLLIN, until, what);
		if (st != RPC_STATUS_OK)
			return st;
	}
}

/* Read a whole reply; *code gets its three digits, c->text its last line. */
static rpc_status read_reply(smtp_conn *c, int *code, const char *what)
{
	char line[SMTP_LINE_MAX + 1];
	for (int i = 0; i < SMTP_REPLY_LINES; i++) {
		rpc_status st = read_line(c, line, sizeof(line), what);
		if (st != RPC_STATUS_OK)
			return st;
		size_t n = strlen(line);
		if (n < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '9' ||
		    line[2] < '0' || line[2] > '9' || (n > 3 && line[3] != ' ' && line[3] != '-')) {
			snprintf(c->err, c->errlen, "smtp %s: not an SMTP reply to %s", c->s->where,
			         what);
			return RPC_STATUS_UNAVAILABLE;
		}
		int this_code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
		if (i > 0 && this_code != *code) {
			snprintf(c->err, c->errlen, "smtp %s: a reply to %s mixes codes",
			         c->s->where, what);
			return RPC_STATUS_UNAVAILABLE;
		}
		*code = this_code;
		const char *text = n > 4 ? line + 4 : "";
		/* keep the text for messages: printable ASCII only */
		size_t k = 0;
		for (; text[k] != '\0' && k + 1 < sizeof(c->text); k++)
			c->text[k] = text[k] >= 0x20 && text[k] < 0x7f ? text[k] : '?';
		c->text[k] = '\0';
		if (c->ehlo && strncasecmp(text, "8BITMIME", 8) == 0 &&
		    (text[8] == '\0' || text[8] == ' '))
			c->has_8bitmime = 1;
		if (n == 3 || line[3] == ' ')
			return RPC_STATUS_OK;
	}
	snprintf(c->err, c->errlen, "smtp %s: the reply to %s has too many lines", c->s->where,
	         what);
	return RPC_STATUS_UNAVAILABLE;
}

/* Send `line` (when not NULL) and read the reply; OK when its code is
 * `want` (or `also`, when not 0). */
static rpc_status command(smtp_conn *c, const char *what, const char *line, int want, int also,
                          int *code_out)
{
	rpc_status st;
	if (line != NULL && (st = send_all(c, line, strlen(line), what)) != RPC_STATUS_OK)
		return st;
	int code = 0;
	if ((st = read_reply(c, &code, what)) != RPC_STATUS_OK)
		return st;
	if (code_out != NULL)
		*code_out = code;
	if (code == want || (also != 0 && code == also))
		return RPC_STATUS_OK;
	snprintf(c->err, c->errlen, "smtp %s: %s refused: %d %s", c->s->where, what, code, c->text);
	return code >= 500 ? RPC_STATUS_FAILED_PRECONDITION : RPC_STATUS_UNAVAILABLE;
}

/* ---- the message ---- */

static int is_ascii(const char *s)
{
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s >= 0x80)
			return 0;
	}
	return 1;
}

/* RFC 2047 encoded words of at most 45 bytes of UTF-8 each, folded. */
static void put_encoded_words(notif_buf *b, const char *s)
{
	size_t n = strlen(s), i = 0;
	while (i < n) {
		size_t take = n - i < 45 ? n - i : 45;
		while (i + take < n && take > 0 && ((unsigned char)s[i + take] & 0xc0) == 0x80)
			take--; /* never split a character */
		unsigned char out[64];
		int len = EVP_EncodeBlock(out, (const unsigned char *)s + i, (int)take);
		if (i > 0)
			notif_buf_puts(b, "\r\n ");
		notif_buf_puts(b, "=?UTF-8?B?");
		notif_buf_put(b, (const char *)out, len > 0 ? (size_t)len : 0);
		notif_buf_puts(b, "?=");
		i += take;
	}
}

static void put_display_name(notif_buf *b, const char *name)
{
	if (!is_ascii(name)) {
		put_encoded_words(b, name);
	} else if (strpbrk(name, "()<>[]:;@\\,.\"") != NULL) {
		notif_buf_puts(b, "\"");
		notif_buf_puts(b, name); /* holds no '"' nor '\\': notif_parse_from */
		notif_buf_puts(b, "\"");
	} else {
		notif_buf_puts(b, name);
	}
}

static void put_date(notif_buf *b)
{
	static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	time_t now = time(NULL);
	struct tm tm;
	if (gmtime_r(&now, &tm) == NULL)
		return;
	notif_buf_printf(b, "Date: %s, %02d %s %04d %02d:%02d:%02d +0000\r\n", days[tm.tm_wday % 7],
	                 tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour,
	                 tm.tm_min, tm.tm_sec);
}

/* The body's lines with CRLF, dot-stuffed, cut before 998 bytes, and the
 * final ".". */
static void put_body(notif_buf *b, const char *body)
{
	size_t col = 0;
	for (const unsigned char *p = (const unsigned char *)body; *p != '\0'; p++) {
		if (*p == '\r' || *p == '\n') {
			if (*p == '\r' && p[1] == '\n')
				p++;
			notif_buf_put(b, "\r\n", 2);
			col = 0;
			continue;
		}
		if (col >= 990 && (*p & 0xc0) != 0x80) {
			notif_buf_put(b, "\r\n", 2);
			col = 0;
		}
		if (col == 0 && *p == '.') {
			notif_buf_put(b, ".", 1);
			col++;
		}
		notif_buf_put(b, (const char *)p, 1);
		col++;
	}
	if (col > 0)
		notif_buf_put(b, "\r\n", 2);
	notif_buf_put(b, ".\r\n", 3);
}

static char *build_message(const smtp_sink *s, const notifications_mail *m)
{
	notif_buf b = {0};
	char mid[ID_UUID_LEN + 1];
	if (id_uuid4(mid) != RPC_STATUS_OK)
		return NULL;
	notif_buf_puts(&b, "From: ");
	if (s->from_name[0] != '\0') {
		put_display_name(&b, s->from_name);
		notif_buf_puts(&b, " ");
	}
	notif_buf_printf(&b, "<%s>\r\nTo: <%s>\r\nSubject: ", s->from_addr, m->to);
	if (is_ascii(m->subject))
		notif_buf_puts(&b, m->subject);
	else
		put_encoded_words(&b, m->subject);
	notif_buf_puts(&b, "\r\n");
	put_date(&b);
	notif_buf_printf(&b,
	                 "Message-ID: <%s@%s>\r\nMIME-Version: 1.0\r\n"
	                 "Content-Type: text/plain; charset=UTF-8\r\n"
	                 "Content-Transfer-Encoding: %s\r\n\r\n",
	                 mid, s->from_domain, is_ascii(m->body) ? "7bit" : "8bit");
	put_body(&b, m->body);
	return notif_buf_take(&b);
}

/* ---- one exchange ---- */

static rpc_status smtp_send(notifications_sink *sink, const notifications_mail *mail, char *err,
                            size_t errlen)
{
	smtp_sink *s = (smtp_sink *)sink;
	const char *why = notifications_check_address(mail->to);
	if (why != NULL) {
		snprintf(err, errlen, "recipient %s", why);
		return RPC_STATUS_INVALID_ARGUMENT;
	}
	if (text_chars(mail->subject, SMTP_SUBJECT_MAX, 0) < 0) {
		snprintf(err, errlen,
		         "the subject must be one line of UTF-8 without control "
		         "characters, at most 900 bytes");
		return RPC_STATUS_INVALID_ARGUMENT;
	}
	if (text_chars(mail->body, SMTP_BODY_MAX, TEXT_MULTILINE) < 0) {
		snprintf(err, errlen, "the body must be UTF-8 text of at most 1 MiB");
		return RPC_STATUS_INVALID_ARGUMENT;
	}
	char *msg = build_message(s, mail);
	if (msg == NULL) {
		snprintf(err, errlen, "no memory for the message");
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	}
	smtp_conn c = {.s = s, .mail = mail, .fd = -1, .err = err, .errlen = errlen};
	char line[600];
	int code = 0;
	rpc_status st = smtp_connect(&c);
	if (st == RPC_STATUS_OK)
		st = command(&c, "the greeting", NULL, 220, 0, NULL);
	if (st == RPC_STATUS_OK) {
		snprintf(line, sizeof(line), "EHLO %s\r\n", s->helo);
		c.ehlo = 1;
		st = command(&c, "EHLO", line, 250, 0, &code);
		c.ehlo = 0;
		if (st == RPC_STATUS_FAILED_PRECONDITION && code >= 500) {
			c.has_8bitmime = 0; /* an old server: HELO */
			snprintf(line, sizeof(line), "HELO %s\r\n", s->helo);
			st = command(&c, "HELO", line, 250, 0, NULL);
		}
	}
	if (st == RPC_STATUS_OK) {
		snprintf(line, sizeof(line), "MAIL FROM:<%s>%s\r\n", s->from_addr,
		         c.has_8bitmime && !is_ascii(msg) ? " BODY=8BITMIME" : "");
		st = command(&c, "MAIL FROM", line, 250, 0, NULL);
	}
	if (st == RPC_STATUS_OK) {
		snprintf(line, sizeof(line), "RCPT TO:<%s>\r\n", mail->to);
		st = command(&c, "RCPT TO", line, 250, 251, NULL);
	}
	if (st == RPC_STATUS_OK)
		st = command(&c, "DATA", "DATA\r\n", 354, 0, NULL);
	if (st == RPC_STATUS_OK &&
	    (st = send_all(&c, msg, strlen(msg), "the message")) == RPC_STATUS_OK)
		st = command(&c, "the message", NULL, 250, 0, NULL);
	if (st == RPC_STATUS_OK) {
		/* accepted: a failing QUIT changes nothing */
		char quit_err[64];
		c.err = quit_err;
		c.errlen = sizeof(quit_err);
		(void)command(&c, "QUIT", "QUIT\r\n", 221, 0, NULL);
	}
	if (c.fd >= 0)
		close(c.fd);
	free(msg);
	return st;
}

static void smtp_destroy(notifications_sink *sink)
{
	free(sink);
}

/* "smtp://host[:port][/]" into host (brackets of IPv6 dropped) and port. */
static int parse_url(const char *url, char *host, size_t host_cap, char *port, size_t port_cap)
{
	if (url == NULL || strncasecmp(url, "smtp://", 7) != 0)
		return -1;
	const char *h = url + 7, *h_end;
	const char *rest;
	if (*h == '[') {
		h_end = strchr(h, ']');
		if (h_end == NULL)
			return -1;
		h++;
		rest = h_end + 1;
		for (const char *p = h; p < h_end; p++) {
			if (strchr("0123456789abcdefABCDEF:.", *p) == NULL)
				return -1;
		}
	} else {
		h_end = h + strspn(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		                      "0123456789.-_");
		rest = h_end;
	}
	size_t hl = (size_t)(h_end - h);
	if (hl == 0 || hl >= host_cap)
		return -1;
	memcpy(host, h, hl);
	host[hl] = '\0';
	long pn = 25;
	if (*rest == ':') {
		rest++;
		size_t d = strspn(rest, "0123456789");
		if (d == 0 || d > 5)
			return -1;
		pn = 0;
		for (size_t i = 0; i < d; i++)
			pn = pn * 10 + (rest[i] - '0');
		rest += d;
	}
	if (pn < 1 || pn > 65535 || (strcmp(rest, "") != 0 && strcmp(rest, "/") != 0))
		return -1;
	snprintf(port, port_cap, "%ld", pn);
	return 0;
}

rpc_status notif_smtp_sink_open(notifications_sink **out, const char *url, const char *from,
                                uint32_t timeout_ms)
{
	*out = NULL;
	smtp_sink *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	if (parse_url(url, s->host, sizeof(s->host), s->port, sizeof(s->port)) != 0 ||
	    notif_parse_from(from, s->from_name, sizeof(s->from_name), s->from_addr,
	                     sizeof(s->from_addr)) != 0) {
		free(s);
		return RPC_STATUS_INVALID_ARGUMENT;
	}
	snprintf(s->where, sizeof(s->where), "%s:%s", s->host, s->port);
	s->from_domain = strchr(s->from_addr, '@') + 1;
	/* EHLO names this machine: its host name when it is a plain one */
	if (gethostname(s->helo, sizeof(s->helo) - 1) != 0 || s->helo[0] == '\0' ||
	    s->helo[strspn(s->helo, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                            "0123456789.-")] != '\0')
		snprintf(s->helo, sizeof(s->helo), "localhost");
	s->timeout_ms = timeout_ms;
	s->base.send = smtp_send;
	s->base.destroy = smtp_destroy;
	*out = &s->base;
	return RPC_STATUS_OK;
}
