/*
 * wire.c - encode and decode the frames of the RPC protocol; see wire.h and
 * docs/wire-protocol.md.
 *
 * The decoder reads through a cursor that refuses to move past the end, so
 * a lying length or count is a TRUNCATED error, never a read out of bounds;
 * counts are checked against their limits before anything is allocated for
 * them.
 */
#include "wire.h"

#include <string.h>

typedef struct cursor {
	const uint8_t *p;
	size_t left;
} cursor;

static int take_u8(cursor *c, uint8_t *v)
{
	if (c->left < 1)
		return -1;
	*v = c->p[0];
	c->p++;
	c->left--;
	return 0;
}

static int take_u16(cursor *c, uint16_t *v)
{
	if (c->left < 2)
		return -1;
	*v = (uint16_t)(c->p[0] | (c->p[1] << 8));
	c->p += 2;
	c->left -= 2;
	return 0;
}

static int take_u32(cursor *c, uint32_t *v)
{
	if (c->left < 4)
		return -1;
	*v = (uint32_t)c->p[0] | ((uint32_t)c->p[1] << 8) | ((uint32_t)c->p[2] << 16) |
	     ((uint32_t)c->p[3] << 24);
	c->p += 4;
	c->left -= 4;
	return 0;
}

static int take_bytes(cursor *c, size_t n, const uint8_t **out)
{
	if (c->left < n)
		return -1;
	*out = c->p;
	c->p += n;
	c->left -= n;
	return 0;
}

static uint8_t *put_u16(uint8_t *o, uint16_t v)
{
	o[0] = (uint8_t)v;
	o[1] = (uint8_t)(v >> 8);
	return o + 2;
}

static uint8_t *put_u32(uint8_t *o, uint32_t v)
{
	o[0] = (uint8_t)v;
	o[1] = (uint8_t)(v >> 8);
	o[2] = (uint8_t)(v >> 16);
	o[3] = (uint8_t)(v >> 24);
	return o + 4;
}

static uint8_t *put_bytes(uint8_t *o, const void *s, size_t n)
{
	if (n > 0)
		memcpy(o, s, n);
	return o + n;
}

/* Length of the valid UTF-8 sequence at s[0..n), 0 when there is none. */
static size_t utf8_seq(const uint8_t *s, size_t n)
{
	uint8_t c = s[0];
	size_t len;
	uint32_t cp, min;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2, cp = c & 0x1f, min = 0x80;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3, cp = c & 0x0f, min = 0x800;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4, cp = c & 0x07, min = 0x10000;
	else
		return 0;
	if (n < len)
		return 0;
	for (size_t k = 1; k < len; k++) {
		if ((s[k] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[k] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

void rpc_wire_text_sanitize(char *s, size_t max)
{
	uint8_t *p = (uint8_t *)s;
	size_t n = strlen(s), i = 0;
	while (i < n) {
		size_t len = utf8_seq(p + i, n - i);
		if (len == 0) {
			p[i] = '?';
			len = 1;
		} else if (len == 1 && ((p[i] < 0x20 && p[i] != '\t') || p[i] == 0x7f)) {
			p[i] = ' ';
		}
		if (i + len > max)
			break;
		i += len;
	}
	p[i < n ? i : n] = '\0';
}

/* Valid UTF-8 with no NUL, no C0 control character but tab, and no DEL. */
static int text_valid(const uint8_t *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		size_t len = utf8_seq(s + i, n - i);
		if (len == 0)
			return 0;
		if (len == 1 && ((s[i] < 0x20 && s[i] != '\t') || s[i] == 0x7f))
			return 0;
		i += len;
	}
	return 1;
}

static int key_valid(const uint8_t *s, size_t n)
{
	if (n == 0 || n > RPC_WIRE_MAX_KEY)
		return 0;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
		      c == '.'))
			return 0;
	}
	return 1;
}

/* "/pkg.Service/Method": service of [A-Za-z0-9_.], method of [A-Za-z0-9_]. */
static int method_valid(const uint8_t *s, size_t n)
{
	if (n < 4 || n > RPC_WIRE_MAX_METHOD || s[0] != '/')
		return 0;
	size_t slash = 0;
	for (size_t i = 1; i < n; i++) {
		uint8_t c = s[i];
		if (c == '/') {
			if (slash != 0 || i == 1)
				return 0;
			slash = i;
			continue;
		}
		int word = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		           (c >= '0' && c <= '9') || c == '_';
		if (!word && !(c == '.' && slash == 0))
			return 0;
	}
	return slash != 0 && slash + 1 < n;
}

int rpc_wire_metadata_valid(const char *key, const char *value)
{
	if (key == NULL || value == NULL)
		return 0;
	size_t vl = strlen(value);
	return key_valid((const uint8_t *)key, strlen(key)) && vl <= RPC_WIRE_MAX_VALUE &&
	       text_valid((const uint8_t *)value, vl);
}

const char *rpc_wire_strerror(rpc_wire_error e)
{
	switch (e) {
	case RPC_WIRE_OK:
		return "ok";
	case RPC_WIRE_TRUNCATED:
		return "truncated frame: a length or count runs past its end";
	case RPC_WIRE_TRAILING:
		return "bytes after the end of the frame";
	case RPC_WIRE_BAD_MAGIC:
		return "not a Panthera RPC frame";
	case RPC_WIRE_BAD_VERSION:
		return "unsupported protocol version";
	case RPC_WIRE_BAD_KIND:
		return "unexpected frame kind";
	case RPC_WIRE_BAD_FLAGS:
		return "reserved flag bits set";
	case RPC_WIRE_BAD_METHOD:
		return "malformed method name";
	case RPC_WIRE_BAD_METADATA:
		return "malformed metadata";
	case RPC_WIRE_BAD_STATUS:
		return "unknown status code";
	case RPC_WIRE_BAD_MESSAGE:
		return "malformed status message";
	case RPC_WIRE_NO_MEMORY:
		return "out of memory decoding the frame";
	}
	return "unknown wire error";
}

rpc_wire_error rpc_wire_decode_metadata(const uint8_t *buf, size_t len, rpc_arena *arena,
                                        rpc_metadata_entry **entries, size_t *n, size_t *used)
{
	cursor c = {buf, len};
	uint16_t count;
	*entries = NULL;
	*n = 0;
	if (take_u16(&c, &count) != 0)
		return RPC_WIRE_TRUNCATED;
	if (count > RPC_WIRE_MAX_METADATA)
		return RPC_WIRE_BAD_METADATA;
	/* Each entry takes at least 7 bytes: a count that cannot fit is a lie. */
	if ((size_t)count * 7u > c.left)
		return RPC_WIRE_TRUNCATED;
	rpc_metadata_entry *md = NULL;
	if (count > 0) {
		md = rpc_arena_calloc(arena, count, sizeof(*md));
		if (md == NULL)
			return RPC_WIRE_NO_MEMORY;
	}
	for (uint16_t i = 0; i < count; i++) {
		uint16_t kl;
		uint32_t vl;
		const uint8_t *k, *v;
		if (take_u16(&c, &kl) != 0 || take_bytes(&c, kl, &k) != 0)
			return RPC_WIRE_TRUNCATED;
		if (!key_valid(k, kl))
			return RPC_WIRE_BAD_METADATA;
		if (take_u32(&c, &vl) != 0)
			return RPC_WIRE_TRUNCATED;
		if (vl > RPC_WIRE_MAX_VALUE)
			return RPC_WIRE_BAD_METADATA;
		if (take_bytes(&c, vl, &v) != 0)
			return RPC_WIRE_TRUNCATED;
		if (!text_valid(v, vl))
			return RPC_WIRE_BAD_METADATA;
		md[i].key = rpc_arena_strndup(arena, (const char *)k, kl);
		md[i].value = rpc_arena_strndup(arena, (const char *)v, vl);
		if (md[i].key == NULL || md[i].value == NULL)
			return RPC_WIRE_NO_MEMORY;
	}
	*entries = md;
	*n = count;
	*used = len - c.left;
	return RPC_WIRE_OK;
}

static rpc_wire_error decode_head(cursor *c, uint8_t kind)
{
	uint8_t magic, version, k, flags;
	if (take_u8(c, &magic) != 0)
		return RPC_WIRE_TRUNCATED;
	if (magic != RPC_WIRE_MAGIC)
		return RPC_WIRE_BAD_MAGIC;
	if (take_u8(c, &version) != 0)
		return RPC_WIRE_TRUNCATED;
	if (version != RPC_WIRE_VERSION)
		return RPC_WIRE_BAD_VERSION;
	if (take_u8(c, &k) != 0 || take_u8(c, &flags) != 0)
		return RPC_WIRE_TRUNCATED;
	if (k != kind)
		return RPC_WIRE_BAD_KIND;
	if (flags != 0)
		return RPC_WIRE_BAD_FLAGS;
	return RPC_WIRE_OK;
}

static rpc_wire_error decode_tail(cursor *c, rpc_arena *arena, rpc_metadata_entry **md,
                                  size_t *n_md)
{
	size_t used;
	rpc_wire_error e = rpc_wire_decode_metadata(c->p, c->left, arena, md, n_md, &used);
	if (e != RPC_WIRE_OK)
		return e;
	c->p += used;
	c->left -= used;
	return RPC_WIRE_OK;
}

rpc_wire_error rpc_wire_decode_request(const uint8_t *buf, size_t len, rpc_arena *arena,
                                       rpc_wire_request *out)
{
	cursor c = {buf, len};
	memset(out, 0, sizeof(*out));
	rpc_wire_error e = decode_head(&c, RPC_WIRE_KIND_REQUEST);
	if (e != RPC_WIRE_OK)
		return e;
	uint16_t ml;
	const uint8_t *m;
	uint32_t pl;
	if (take_u32(&c, &out->timeout_ms) != 0 || take_u16(&c, &ml) != 0)
		return RPC_WIRE_TRUNCATED;
	if (ml > RPC_WIRE_MAX_METHOD)
		return RPC_WIRE_BAD_METHOD;
	if (take_bytes(&c, ml, &m) != 0)
		return RPC_WIRE_TRUNCATED;
	if (!method_valid(m, ml))
		return RPC_WIRE_BAD_METHOD;
	out->method = rpc_arena_strndup(arena, (const char *)m, ml);
	if (out->method == NULL)
		return RPC_WIRE_NO_MEMORY;
	out->method_len = ml;
	if ((e = decode_tail(&c, arena, &out->metadata, &out->n_metadata)) != RPC_WIRE_OK)
		return e;
	if (take_u32(&c, &pl) != 0 || take_bytes(&c, pl, &out->payload) != 0)
		return RPC_WIRE_TRUNCATED;
	out->payload_len = pl;
	return c.left == 0 ? RPC_WIRE_OK : RPC_WIRE_TRAILING;
}

rpc_wire_error rpc_wire_decode_reply(const uint8_t *buf, size_t len, rpc_arena *arena,
                                     rpc_wire_reply *out)
{
	cursor c = {buf, len};
	memset(out, 0, sizeof(*out));
	rpc_wire_error e = decode_head(&c, RPC_WIRE_KIND_REPLY);
	if (e != RPC_WIRE_OK)
		return e;
	uint8_t status, r1, r2, r3;
	uint32_t ml, dl, pl;
	const uint8_t *msg;
	if (take_u8(&c, &status) != 0 || take_u8(&c, &r1) != 0 || take_u8(&c, &r2) != 0 ||
	    take_u8(&c, &r3) != 0)
		return RPC_WIRE_TRUNCATED;
	if (status >= RPC_STATUS_COUNT)
		return RPC_WIRE_BAD_STATUS;
	if (r1 != 0 || r2 != 0 || r3 != 0)
		return RPC_WIRE_BAD_FLAGS;
	out->status = (rpc_status)status;
	if (take_u32(&c, &ml) != 0)
		return RPC_WIRE_TRUNCATED;
	if (ml > RPC_WIRE_MAX_MESSAGE)
		return RPC_WIRE_BAD_MESSAGE;
	if (take_bytes(&c, ml, &msg) != 0)
		return RPC_WIRE_TRUNCATED;
	if (!text_valid(msg, ml))
		return RPC_WIRE_BAD_MESSAGE;
	out->message = rpc_arena_strndup(arena, (const char *)msg, ml);
	if (out->message == NULL)
		return RPC_WIRE_NO_MEMORY;
	if ((e = decode_tail(&c, arena, &out->metadata, &out->n_metadata)) != RPC_WIRE_OK)
		return e;
	if (take_u32(&c, &dl) != 0 || take_bytes(&c, dl, &out->details) != 0)
		return RPC_WIRE_TRUNCATED;
	out->details_len = dl;
	if (take_u32(&c, &pl) != 0 || take_bytes(&c, pl, &out->payload) != 0)
		return RPC_WIRE_TRUNCATED;
	out->payload_len = pl;
	return c.left == 0 ? RPC_WIRE_OK : RPC_WIRE_TRAILING;
}

/* Bytes of a metadata block; 0 when it breaks a limit. */
static size_t metadata_size(const rpc_metadata_entry *md, size_t n)
{
	if (n > RPC_WIRE_MAX_METADATA)
		return 0;
	size_t total = 2;
	for (size_t i = 0; i < n; i++) {
		size_t kl = strlen(md[i].key), vl = strlen(md[i].value);
		if (kl == 0 || kl > RPC_WIRE_MAX_KEY || vl > RPC_WIRE_MAX_VALUE)
			return 0;
		total += 2 + kl + 4 + vl;
	}
	return total;
}

static uint8_t *put_metadata(uint8_t *o, const rpc_metadata_entry *md, size_t n)
{
	o = put_u16(o, (uint16_t)n);
	for (size_t i = 0; i < n; i++) {
		size_t kl = strlen(md[i].key), vl = strlen(md[i].value);
		o = put_u16(o, (uint16_t)kl);
		o = put_bytes(o, md[i].key, kl);
		o = put_u32(o, (uint32_t)vl);
		o = put_bytes(o, md[i].value, vl);
	}
	return o;
}

size_t rpc_wire_request_size(const char *method, const rpc_metadata_entry *md, size_t n_md,
                             size_t payload_len)
{
	size_t ml = strlen(method);
	size_t mds = metadata_size(md, n_md);
	if (ml == 0 || ml > RPC_WIRE_MAX_METHOD || mds == 0 || payload_len > UINT32_MAX)
		return 0;
	return RPC_WIRE_REQUEST_FIXED + 2 + ml + mds + 4 + payload_len;
}

void rpc_wire_encode_request(uint8_t *o, uint32_t timeout_ms, const char *method,
                             const rpc_metadata_entry *md, size_t n_md, size_t payload_len)
{
	size_t ml = strlen(method);
	*o++ = RPC_WIRE_MAGIC;
	*o++ = RPC_WIRE_VERSION;
	*o++ = RPC_WIRE_KIND_REQUEST;
	*o++ = 0;
	o = put_u32(o, timeout_ms);
	o = put_u16(o, (uint16_t)ml);
	o = put_bytes(o, method, ml);
	o = put_metadata(o, md, n_md);
	put_u32(o, (uint32_t)payload_len);
}

size_t rpc_wire_reply_size(const char *message, const rpc_metadata_entry *md, size_t n_md,
                           size_t details_len, size_t payload_len)
{
	size_t ml = message ? strlen(message) : 0;
	size_t mds = metadata_size(md, n_md);
	if (ml > RPC_WIRE_MAX_MESSAGE || mds == 0 || details_len > UINT32_MAX ||
	    payload_len > UINT32_MAX)
		return 0;
	return RPC_WIRE_REPLY_FIXED + 4 + ml + mds + 4 + details_len + 4 + payload_len;
}

void rpc_wire_encode_reply(uint8_t *o, rpc_status status, const char *message,
                           const rpc_metadata_entry *md, size_t n_md, const uint8_t *details,
                           size_t details_len, size_t payload_len)
{
	size_t ml = message ? strlen(message) : 0;
	*o++ = RPC_WIRE_MAGIC;
	*o++ = RPC_WIRE_VERSION;
	*o++ = RPC_WIRE_KIND_REPLY;
	*o++ = 0;
	*o++ = (uint8_t)status;
	*o++ = 0;
	*o++ = 0;
	*o++ = 0;
	o = put_u32(o, (uint32_t)ml);
	o = put_bytes(o, message, ml);
	o = put_metadata(o, md, n_md);
	o = put_u32(o, (uint32_t)details_len);
	o = put_bytes(o, details, details_len);
	put_u32(o, (uint32_t)payload_len);
}
