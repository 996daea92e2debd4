/*
 * text.h - the checks every service applies to text from the wire: well-
 * formed UTF-8 (RFC 3629: shortest form only, no surrogates, nothing past
 * U+10FFFF), no control characters unless asked for, and lengths counted in
 * characters (code points), as PostgreSQL's varchar(n) and API.md count
 * them, not in bytes.
 *
 * A control character is one of Unicode's Cc: C0 (U+0000..U+001F), DEL
 * (U+007F) and C1 (U+0080..U+009F).
 *
 * Also here: the UTF-8 encoder of one code point, which the JSON readers
 * (jwt.c's, the gateway's) share for their \u escapes.
 *
 * Pure functions: any thread. None reads past the first byte it refuses,
 * nor past the NUL of a NUL-terminated string or the length it is given.
 * text_utf8_seq_n() is the one UTF-8 decoder every other check here (and
 * the gateway's JSON and percent-decoding) is built on.
 */
#ifndef PANTHERA_TEXT_H
#define PANTHERA_TEXT_H

#include <stddef.h>
#include <stdint.h>

/* Flags of text_chars and text_valid. */
#define TEXT_MULTILINE   1u /* tab, line feed and carriage return are allowed */
#define TEXT_ANY_CONTROL 2u /* every control character is allowed (passwords) */

/* text_utf8_seq_n(): the bytes given are a well-formed start, cut short. */
#define TEXT_UTF8_CUT (-1)

/*
 * The length, 1..4, of the well-formed UTF-8 sequence that starts
 * p[0..avail); 0 when those bytes cannot start one (a stray continuation
 * byte, a lead byte that no sequence has, an overlong form, a surrogate, a
 * code point past U+10FFFF, a byte that should continue the sequence and
 * does not); TEXT_UTF8_CUT when all avail bytes (none, when avail is 0) are
 * the start of a well-formed sequence that needs more. Bytes are read in
 * order and the first that decides ends the read, so a byte-at-a-time
 * caller learns of a refused byte as soon as it is added. A NUL byte is a
 * sequence of 1 here, a control character like any other.
 */
int text_utf8_seq_n(const char *p, size_t avail);

/* The UTF-8 form of code point cp (at most U+10FFFF; surrogate code points
 * are encoded like the rest, callers that refuse them do so first) into
 * out[0..4); its length, 1..4. */
size_t text_utf8_put(uint32_t cp, char out[4]);

/* 1 when s[0..n) is well-formed UTF-8 from end to end (NUL bytes and
 * control characters included), else 0. */
int text_utf8_valid(const char *s, size_t n);

/*
 * The length, 1..4, of the well-formed UTF-8 sequence that starts at `p`,
 * or 0 when there is none there (a stray continuation byte, an overlong
 * form, a surrogate, a code point past U+10FFFF, a sequence cut short) or
 * `p` points at the NUL. Control characters are sequences like any other.
 */
size_t text_utf8_seq(const char *p);

/*
 * The number of characters of `s`, or -1 when `s` is not well-formed UTF-8,
 * holds a control character that `flags` does not allow, or is longer than
 * max_bytes bytes (SIZE_MAX: no bound but the string's end). NULL counts as
 * "" (0).
 */
long text_chars(const char *s, size_t max_bytes, unsigned flags);

/*
 * 1 when `s` is min_chars..max_chars characters of text that text_chars
 * accepts under `flags`, else 0. However long `s` is, the scan stops a few
 * bytes past its first 4 * max_chars. NULL counts as "".
 */
int text_valid(const char *s, size_t min_chars, size_t max_chars, unsigned flags);

/* 1 when `s` holds nothing but spaces, tabs and line breaks (or nothing:
 * "" and NULL are blank). */
int text_blank(const char *s);

#endif /* PANTHERA_TEXT_H */
