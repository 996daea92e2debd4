/*
 * test_base64.c - panthera/base64.h: the RFC 4648 §10 test vectors in every
 * form, both alphabets and their mix, padding produced / required /
 * optional / refused, the canonical-bits check, bad text, and bounds (out
 * buffers of exactly the size needed, one byte short, text that is not
 * NUL-terminated, every length from 0 to 70 bytes). Buffers are heap blocks
 * of the exact size, so ASan catches a byte read or written past them. No
 * database.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "panthera/base64.h"

#define STD  BASE64_STD
#define URL  BASE64_URL
#define PAD  BASE64_PAD
#define OPT  BASE64_PAD_OPTIONAL
#define CANO BASE64_CANONICAL

/* Encode into a heap buffer of exactly the size the text needs. */
static char *encode(const void *in, size_t n, unsigned flags)
{
	size_t len = base64_encoded_len(n, flags), got = (size_t)-1;
	char *out = malloc(len + 1);
	assert_non_null(out);
	assert_int_equal(base64_encode(in, n, flags, out, len + 1, &got), 0);
	assert_int_equal(got, len);
	assert_int_equal(strlen(out), len);
	return out;
}

/*
 * Decode the text `s` (copied to a heap block of its exact length, without
 * a NUL) into a heap block of exactly `cap` bytes. Returns what
 * base64_decode returned; *out (freed by the caller) and *n get the bytes.
 */
static int decode_cap(const char *s, size_t len, unsigned flags, size_t cap, uint8_t **out,
                      size_t *n)
{
	char *text = malloc(len > 0 ? len : 1);
	assert_non_null(text);
	memcpy(text, s, len);
	*out = malloc(cap > 0 ? cap : 1);
	assert_non_null(*out);
	*n = (size_t)-1;
	int rc = base64_decode(text, len, flags, cap > 0 ? *out : NULL, cap, n);
	free(text);
	return rc;
}

/* Decode with room to spare; 1 when it is refused. */
static int refused(const char *s, unsigned flags)
{
	uint8_t *out;
	size_t n;
	int rc = decode_cap(s, strlen(s), flags, base64_decoded_max(strlen(s)), &out, &n);
	if (rc != 0)
		assert_int_equal(n, (size_t)-1); /* untouched */
	free(out);
	return rc != 0;
}

/* Decode `s` under `flags` and assert it stands for want[0..wn). */
static void assert_decodes(const char *s, unsigned flags, const char *want, size_t wn)
{
	uint8_t *out;
	size_t n;
	if (decode_cap(s, strlen(s), flags, wn, &out, &n) != 0)
		fail_msg("\"%s\" refused under flags %#x", s, flags);
	assert_int_equal(n, wn);
	assert_memory_equal(out, want, wn);
	free(out);
}

static const struct {
	const char *bytes, *padded, *raw;
} rfc4648[] = {
    {"", "", ""},
    {"f", "Zg==", "Zg"},
    {"fo", "Zm8=", "Zm8"},
    {"foo", "Zm9v", "Zm9v"},
    {"foob", "Zm9vYg==", "Zm9vYg"},
    {"fooba", "Zm9vYmE=", "Zm9vYmE"},
    {"foobar", "Zm9vYmFy", "Zm9vYmFy"},
};
#define N_RFC (sizeof(rfc4648) / sizeof(rfc4648[0]))

static void test_rfc4648_vectors_encode(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_RFC; i++) {
		const char *b = rfc4648[i].bytes;
		/* the vectors hold neither '+' nor '/': both alphabets agree */
		for (unsigned a = STD; a <= URL; a++) {
			char *p = encode(b, strlen(b), a | PAD);
			assert_string_equal(p, rfc4648[i].padded);
			free(p);
			p = encode(b, strlen(b), a);
			assert_string_equal(p, rfc4648[i].raw);
			free(p);
		}
	}
}

static void test_rfc4648_vectors_decode(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_RFC; i++) {
		const char *b = rfc4648[i].bytes, *pd = rfc4648[i].padded, *raw = rfc4648[i].raw;
		size_t bn = strlen(b);
		assert_decodes(pd, STD | PAD | CANO, b, bn);
		assert_decodes(pd, URL | OPT, b, bn);
		assert_decodes(raw, URL | CANO, b, bn);
		assert_decodes(raw, STD | URL | OPT | CANO, b, bn);
		if (strcmp(pd, raw) != 0) {
			assert_true(refused(raw, STD | PAD)); /* padding required */
			assert_true(refused(pd, STD));        /* '=' not allowed */
			assert_true(refused(pd, URL | CANO));
		}
	}
}

/* 0xfb 0xff 0xbf is "+/+/" in the standard alphabet, "-_-_" in base64url. */
static void test_alphabets_accepted_and_produced(void **state)
{
	(void)state;
	static const uint8_t b[] = {0xfb, 0xff, 0xbf};
	char *p = encode(b, 3, STD);
	assert_string_equal(p, "+/+/");
	free(p);
	p = encode(b, 3, URL);
	assert_string_equal(p, "-_-_");
	free(p);
	p = encode(b, 2, STD | PAD);
	assert_string_equal(p, "+/8=");
	free(p);
	p = encode(b, 2, URL | PAD);
	assert_string_equal(p, "-_8=");
	free(p);

	assert_decodes("+/+/", STD, (const char *)b, 3);
	assert_decodes("-_-_", URL, (const char *)b, 3);
	assert_true(refused("-_-_", STD));
	assert_true(refused("+/+/", URL));
	assert_true(refused("+/+_", STD));
	assert_true(refused("+/+_", URL));
	/* with both, each character may come from either alphabet */
	assert_decodes("+_-/", STD | URL, (const char *)b, 3);
	assert_decodes("-/8=", STD | URL | PAD, (const char *)b, 2);

	/* no alphabet, or both for an encoder: refused */
	char out[8] = "xxxxxxx";
	size_t n = 99;
	assert_int_equal(base64_encode(b, 3, STD | URL, out, sizeof(out), &n), -1);
	assert_string_equal(out, "");
	assert_int_equal(n, 99);
	assert_int_equal(base64_encode(b, 3, PAD, out, sizeof(out), &n), -1);
	assert_int_equal(base64_encode(b, 3, 0, out, sizeof(out), NULL), -1);
	assert_true(refused("Zm9v", 0));
	assert_true(refused("Zm9v", PAD | OPT | CANO));
}

static void test_padding_required_optional_refused(void **state)
{
	(void)state;
	/* required: the length is a multiple of 4 with the exact '=' count */
	assert_decodes("Zg==", STD | PAD, "f", 1);
	assert_decodes("Zm8=", STD | PAD, "fo", 2);
	assert_decodes("", STD | PAD, "", 0);
	assert_true(refused("Zg", STD | PAD));
	assert_true(refused("Zm8", STD | PAD));
	assert_true(refused("Zg=", STD | PAD));
	assert_true(refused("Zm8==", STD | PAD));
	assert_true(refused("Zg===", STD | PAD));

	/* optional: either form, but padding that is there must be right */
	assert_decodes("Zg==", STD | OPT, "f", 1);
	assert_decodes("Zg", STD | OPT, "f", 1);
	assert_decodes("Zm8=", STD | OPT, "fo", 2);
	assert_decodes("Zm8", STD | OPT, "fo", 2);
	assert_decodes("Zg==", STD | PAD | OPT, "f", 1); /* OPT wins */
	assert_decodes("Zg", STD | PAD | OPT, "f", 1);
	static const char *const bad_pad[] = {
	    "Zg=",  "Zg===", "Zm8==",    "Z===",  "=",      "==",   "===",  "====",
	    "Zm=9", "=Zm9",  "Zg==Zg==", "Zm9v=", "Zm9v==", "Zg=a", "Z=g=",
	};
	for (size_t i = 0; i < sizeof(bad_pad) / sizeof(bad_pad[0]); i++) {
		if (!refused(bad_pad[i], STD | OPT))
			fail_msg("\"%s\" accepted with optional padding", bad_pad[i]);
		if (!refused(bad_pad[i], STD | PAD))
			fail_msg("\"%s\" accepted with padding required", bad_pad[i]);
		if (!refused(bad_pad[i], STD | URL))
			fail_msg("\"%s\" accepted without padding", bad_pad[i]);
	}
	/* refused: '=' is outside the alphabet */
	assert_true(refused("Zg==", STD | URL | CANO));
	assert_true(refused("Zm8=", URL));
}

static void test_canonical_bits(void **state)
{
	(void)state;
	/* "f" is Zg; Zh..Zv differ only in the 4 unused bits */
	for (char c = 'h'; c <= 'v'; c++) {
		char raw[3] = {'Z', c, '\0'}, pd[5] = {'Z', c, '=', '=', '\0'};
		assert_true(refused(raw, URL | CANO));
		assert_true(refused(pd, STD | PAD | CANO));
		assert_decodes(raw, URL, "f", 1); /* ignored without the flag */
		assert_decodes(pd, STD | OPT, "f", 1);
	}
	/* "fo" is Zm8; Zm9 sets one of the 2 unused bits */
	assert_true(refused("Zm9", STD | CANO));
	assert_true(refused("Zm9=", STD | OPT | CANO));
	assert_decodes("Zm9", STD, "fo", 2);
	assert_decodes("Zm8", STD | CANO, "fo", 2);
	/* whole groups have no unused bits */
	assert_decodes("////", STD | CANO, "\xff\xff\xff", 3);
}

static void test_bad_text_is_refused(void **state)
{
	(void)state;
	static const char *const bad[] = {
	    "Z",           /* length 1 mod 4 */
	    "Zm9vY",       /* 5 */
	    "Zm9v\n",      /* a line break */
	    " Zm9v",       /* a space */
	    "Zm 9v",       /* inside */
	    "Zm9v\r\n",    /* CRLF */
	    "Zm9\xc3\xa9", /* non-ASCII */
	    "Zm9.",        /* outside both alphabets */
	    "Zm9*",        /* again */
	    "Zm\x80v",     /* a byte past ASCII */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		for (unsigned f = 0; f <= (STD | URL | PAD | OPT | CANO); f++)
			if ((f & (STD | URL)) != 0 && !refused(bad[i], f))
				fail_msg("\"%s\" accepted under flags %#x", bad[i], f);
	/* a NUL inside the given length is a byte outside the alphabet */
	uint8_t *out;
	size_t n;
	assert_int_equal(decode_cap("Zm\0v", 4, STD | URL, 3, &out, &n), -1);
	free(out);
	/* the length bounds the text: what follows is not read */
	assert_int_equal(decode_cap("Zm9v!!!", 4, STD | CANO, 3, &out, &n), 0);
	assert_int_equal(n, 3);
	assert_memory_equal(out, "foo", 3);
	free(out);
}

static void test_lengths(void **state)
{
	(void)state;
	static const size_t raw[] = {0, 2, 3, 4, 6, 7, 8}, padded[] = {0, 4, 4, 4, 8, 8, 8};
	for (size_t n = 0; n < 7; n++) {
		assert_int_equal(base64_encoded_len(n, STD), raw[n]);
		assert_int_equal(base64_encoded_len(n, URL | PAD), padded[n]);
	}
	assert_int_equal(base64_encoded_len(BASE64_ENCODE_MAX, STD | PAD) % 4, 0);
	assert_true(base64_encoded_len(BASE64_ENCODE_MAX, STD | PAD) > BASE64_ENCODE_MAX);
	assert_int_equal(base64_encoded_len(BASE64_ENCODE_MAX + 1, STD), 0);
	assert_int_equal(base64_encoded_len(SIZE_MAX, STD | PAD), 0);
	char out[4] = "xyz";
	assert_int_equal(base64_encode("", BASE64_ENCODE_MAX + 1, STD, out, sizeof(out), NULL), -1);
	assert_string_equal(out, "");

	static const size_t max[] = {0, 0, 1, 2, 3, 3, 4, 5, 6};
	for (size_t len = 0; len < 9; len++)
		assert_int_equal(base64_decoded_max(len), max[len]);
	assert_int_equal(base64_decoded_max(SIZE_MAX), SIZE_MAX / 4 * 3 + 2);
}

/* Every byte count 0..70, every form: exact buffers, and one byte short. */
static void test_exact_buffers_every_length(void **state)
{
	(void)state;
	static const unsigned forms[] = {STD, URL, STD | PAD, URL | PAD};
	uint8_t src[70];
	for (size_t i = 0; i < sizeof(src); i++)
		src[i] = (uint8_t)(i * 167 + 13); /* every residue, '+' '/' included */
	for (size_t n = 0; n <= sizeof(src); n++) {
		uint8_t *copy = malloc(n > 0 ? n : 1);
		assert_non_null(copy);
		memcpy(copy, src, n);
		for (size_t f = 0; f < 4; f++) {
			unsigned fl = forms[f];
			char *text = encode(copy, n, fl);
			size_t len = strlen(text);

			/* one byte short of the NUL: refused, "" and nothing past */
			char *small = malloc(len > 0 ? len : 1);
			assert_non_null(small);
			memset(small, '#', len > 0 ? len : 1);
			size_t got = 7;
			assert_int_equal(base64_encode(copy, n, fl, small, len, &got), -1);
			assert_int_equal(got, 7);
			if (len > 0) {
				assert_int_equal(small[0], '\0');
				for (size_t k = 1; k < len; k++)
					assert_int_equal(small[k], '#');
			}
			free(small);

			/* back, into exactly n bytes, canonical and strict */
			uint8_t *out;
			unsigned dfl = (fl & (STD | URL)) | (fl & PAD) | CANO;
			assert_int_equal(decode_cap(text, len, dfl, n, &out, &got), 0);
			assert_int_equal(got, n);
			if (n > 0)
				assert_memory_equal(out, copy, n);
			free(out);
			assert_int_equal(decode_cap(text, len, STD | URL | OPT, n, &out, &got), 0);
			assert_int_equal(got, n);
			free(out);
			if (n > 0) {
				assert_int_equal(decode_cap(text, len, dfl, n - 1, &out, &got), -1);
				assert_int_equal(got, (size_t)-1);
				free(out);
			}
			/* a byte dropped from the end: refused when the form forbids it */
			if (len > 0 && (fl & PAD)) {
				assert_int_equal(decode_cap(text, len - 1, dfl, n, &out, &got), -1);
				free(out);
			}
			free(text);
		}
		free(copy);
	}
}

static void test_every_byte_round_trips(void **state)
{
	(void)state;
	uint8_t all[256];
	for (int i = 0; i < 256; i++)
		all[i] = (uint8_t)i;
	for (unsigned a = STD; a <= URL; a++) {
		char *text = encode(all, sizeof(all), a);
		assert_int_equal(strlen(text), 342);
		/* the other alphabet's two characters never appear */
		assert_null(strpbrk(text, a == STD ? "-_=" : "+/="));
		uint8_t *out;
		size_t n;
		assert_int_equal(decode_cap(text, 342, a | CANO, 256, &out, &n), 0);
		assert_int_equal(n, 256);
		assert_memory_equal(out, all, 256);
		free(out);
		free(text);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rfc4648_vectors_encode),
	    cmocka_unit_test(test_rfc4648_vectors_decode),
	    cmocka_unit_test(test_alphabets_accepted_and_produced),
	    cmocka_unit_test(test_padding_required_optional_refused),
	    cmocka_unit_test(test_canonical_bits),
	    cmocka_unit_test(test_bad_text_is_refused),
	    cmocka_unit_test(test_lengths),
	    cmocka_unit_test(test_exact_buffers_every_length),
	    cmocka_unit_test(test_every_byte_round_trips),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
