/*
 * test_text.c - panthera/text.h: well-formed UTF-8 only (overlong forms,
 * surrogates, code points past U+10FFFF, stray and missing continuation
 * bytes refused), control characters (C0, DEL, C1) refused unless a flag
 * allows them, lengths in characters and not bytes, byte bounds that stop
 * the scan, blank text; the length-bounded decoder (a cut sequence told
 * from a refused one, at the first byte that decides), validation of byte
 * ranges, and the encoder of code points. No database.
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

#include "panthera/text.h"

/* Every well-formed boundary of each sequence length. */
static void test_well_formed_sequences_are_accepted(void **state)
{
	(void)state;
	assert_int_equal(text_utf8_seq("A"), 1);
	assert_int_equal(text_utf8_seq("\xc2\xa0"), 2);         /* U+00A0 */
	assert_int_equal(text_utf8_seq("\xdf\xbf"), 2);         /* U+07FF */
	assert_int_equal(text_utf8_seq("\xe0\xa0\x80"), 3);     /* U+0800 */
	assert_int_equal(text_utf8_seq("\xed\x9f\xbf"), 3);     /* U+D7FF */
	assert_int_equal(text_utf8_seq("\xee\x80\x80"), 3);     /* U+E000 */
	assert_int_equal(text_utf8_seq("\xef\xbf\xbf"), 3);     /* U+FFFF */
	assert_int_equal(text_utf8_seq("\xf0\x90\x80\x80"), 4); /* U+10000 */
	assert_int_equal(text_utf8_seq("\xf4\x8f\xbf\xbf"), 4); /* U+10FFFF */
	assert_int_equal(text_utf8_seq(""), 0);                 /* the end */
	assert_int_equal(text_chars("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\x86", SIZE_MAX, 0), 8);
}

static void test_overlong_forms_are_refused(void **state)
{
	(void)state;
	const char *overlong[] = {
	    "\xc0\xaf",             /* '/' in two bytes */
	    "\xc1\xbf",             /* U+007F in two bytes */
	    "\xc0\x80",             /* NUL in two bytes (modified UTF-8) */
	    "\xe0\x80\xaf",         /* '/' in three */
	    "\xe0\x9f\xbf",         /* U+07FF in three */
	    "\xf0\x80\x80\xaf",     /* '/' in four */
	    "\xf0\x8f\xbf\xbf",     /* U+FFFF in four */
	    "\xf8\x88\x80\x80\x80", /* five-byte form */
	    "\xfc\x84\x80\x80\x80\x80",
	};
	for (size_t i = 0; i < sizeof(overlong) / sizeof(overlong[0]); i++) {
		if (text_utf8_seq(overlong[i]) != 0 || text_chars(overlong[i], SIZE_MAX, 0) != -1)
			fail_msg("overlong form #%zu accepted", i);
	}
}

static void test_surrogates_and_past_u10ffff_are_refused(void **state)
{
	(void)state;
	assert_int_equal(text_utf8_seq("\xed\xa0\x80"), 0); /* U+D800 */
	assert_int_equal(text_utf8_seq("\xed\xbf\xbf"), 0); /* U+DFFF */
	assert_int_equal(text_chars("a\xed\xb0\x80z", SIZE_MAX, TEXT_ANY_CONTROL), -1);
	/* a CESU-8 pair for U+1F406 */
	assert_int_equal(text_chars("\xed\xa0\xbd\xed\xb0\x86", SIZE_MAX, 0), -1);
	assert_int_equal(text_utf8_seq("\xf4\x90\x80\x80"), 0); /* U+110000 */
	assert_int_equal(text_utf8_seq("\xf7\xbf\xbf\xbf"), 0); /* U+1FFFFF */
	assert_int_equal(text_chars("x\xf5\x80\x80\x80", SIZE_MAX, 0), -1);
	assert_int_equal(text_chars("\xff", SIZE_MAX, TEXT_ANY_CONTROL), -1);
	assert_int_equal(text_chars("\xfe", SIZE_MAX, TEXT_ANY_CONTROL), -1);
}

static void test_cut_and_stray_sequences_are_refused(void **state)
{
	(void)state;
	/* cut short by the end of the string: nothing past the NUL is read
	 * (ASan watches the heap copies) */
	const char *cut[] = {"\xc3", "\xe2\x82", "\xf0\x9f\x90", "ok \xe2"};
	for (size_t i = 0; i < sizeof(cut) / sizeof(cut[0]); i++) {
		size_t n = strlen(cut[i]);
		char *h = malloc(n + 1);
		assert_non_null(h);
		memcpy(h, cut[i], n + 1);
		if (text_chars(h, SIZE_MAX, TEXT_ANY_CONTROL) != -1 ||
		    text_utf8_seq(h + n - 1) != 0 || text_valid(h, 0, 100, 0))
			fail_msg("cut sequence #%zu accepted", i);
		free(h);
	}
	/* cut short by another character */
	assert_int_equal(text_chars("\xe2\x82"
	                            "A",
	                            SIZE_MAX, 0),
	                 -1);
	assert_int_equal(text_chars("\xc3"
	                            "\xc3\xa9",
	                            SIZE_MAX, 0),
	                 -1);
	/* a continuation byte with no lead */
	assert_int_equal(text_utf8_seq("\x80"), 0);
	assert_int_equal(text_chars("abc\xbf", SIZE_MAX, 0), -1);
	/* one too many continuation bytes */
	assert_int_equal(text_chars("\xc3\xa9\xa9", SIZE_MAX, 0), -1);
}

static void test_control_characters_follow_the_flags(void **state)
{
	(void)state;
	const char *c0[] = {"a\x01", "tab\t", "lf\n", "cr\r", "esc\x1b[0m", "del\x7f"};
	for (size_t i = 0; i < sizeof(c0) / sizeof(c0[0]); i++) {
		if (text_chars(c0[i], SIZE_MAX, 0) != -1)
			fail_msg("control #%zu accepted on one line", i);
		if (text_chars(c0[i], SIZE_MAX, TEXT_ANY_CONTROL) < 0)
			fail_msg("control #%zu refused with TEXT_ANY_CONTROL", i);
	}
	/* multiline allows tab, LF, CR and nothing else */
	assert_int_equal(text_chars("a\tb\r\nc", SIZE_MAX, TEXT_MULTILINE), 6);
	assert_int_equal(text_chars("a\x0b", SIZE_MAX, TEXT_MULTILINE), -1); /* VT */
	assert_int_equal(text_chars("a\x0c", SIZE_MAX, TEXT_MULTILINE), -1); /* FF */
	assert_int_equal(text_chars("a\x7f", SIZE_MAX, TEXT_MULTILINE), -1);
	/* C1: U+0080..U+009F (U+0085, NEXT LINE, among them) */
	assert_int_equal(text_chars("a\xc2\x80", SIZE_MAX, 0), -1);
	assert_int_equal(text_chars("a\xc2\x85", SIZE_MAX, TEXT_MULTILINE), -1);
	assert_int_equal(text_chars("a\xc2\x9f", SIZE_MAX, 0), -1);
	assert_int_equal(text_chars("a\xc2\x9f", SIZE_MAX, TEXT_ANY_CONTROL), 2);
	assert_int_equal(text_chars("a\xc2\xa0", SIZE_MAX, 0), 2); /* NBSP is no control */
	/* U+2028 LINE SEPARATOR is a format character, not Cc: accepted */
	assert_int_equal(text_chars("\xe2\x80\xa8", SIZE_MAX, 0), 1);
}

static void test_lengths_are_characters_not_bytes(void **state)
{
	(void)state;
	/* 3 characters in 9 bytes */
	const char *euros = "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac";
	assert_int_equal(text_chars(euros, SIZE_MAX, 0), 3);
	assert_true(text_valid(euros, 3, 3, 0));
	assert_false(text_valid(euros, 4, 10, 0));
	assert_false(text_valid(euros, 1, 2, 0));
	/* 200 two-byte characters fit a 200-character field */
	char s[401 + 4];
	for (int i = 0; i < 200; i++)
		memcpy(s + 2 * i, "\xc3\xa9", 2);
	s[400] = '\0';
	assert_true(text_valid(s, 1, 200, 0));
	assert_false(text_valid(s, 1, 199, 0));
	/* 4-byte characters: the byte bound of text_valid is 4 per character */
	assert_true(text_valid("\xf0\x9f\x90\x86\xf0\x9f\x90\x86", 2, 2, 0));
	/* min: "" and NULL are 0 characters */
	assert_true(text_valid("", 0, 5, 0));
	assert_false(text_valid("", 1, 5, 0));
	assert_false(text_valid(NULL, 1, 5, 0));
	assert_int_equal(text_chars(NULL, 0, 0), 0);
}

static void test_byte_bound_stops_the_scan(void **state)
{
	(void)state;
	assert_int_equal(text_chars("abcde", 5, 0), 5);
	assert_int_equal(text_chars("abcdef", 5, 0), -1);
	/* a character that would cross the bound is refused whole */
	assert_int_equal(text_chars("abc\xc3\xa9", 5, 0), 4);
	assert_int_equal(text_chars("abcd\xc3\xa9", 5, 0), -1);
	assert_int_equal(text_chars("", 0, 0), 0);
	assert_int_equal(text_chars("a", 0, 0), -1);
	/* the scan stops at the bound: a buffer with no NUL at all, which
	 * ASan would catch being read past its end */
	char *raw = malloc(16);
	assert_non_null(raw);
	memset(raw, 'x', 16);
	assert_int_equal(text_chars(raw, 10, 0), -1);
	assert_false(text_valid(raw, 1, 3, 0)); /* 12 bytes at most */
	free(raw);
}

/* text_utf8_seq_n() on a heap copy of exactly n bytes (ASan sees a read
 * past them). */
static int seq_n(const char *s, size_t n)
{
	char *h = malloc(n > 0 ? n : 1);
	assert_non_null(h);
	memcpy(h, s, n);
	int k = text_utf8_seq_n(h, n);
	free(h);
	return k;
}

static void test_bounded_decoder_tells_cut_from_refused(void **state)
{
	(void)state;
	/* whole sequences, each read within its length */
	assert_int_equal(seq_n("A", 1), 1);
	assert_int_equal(seq_n("\0", 1), 1); /* a NUL is a character here */
	assert_int_equal(seq_n("\x1b", 1), 1);
	assert_int_equal(seq_n("\xc2\xa0", 2), 2);
	assert_int_equal(seq_n("\xe0\xa0\x80", 3), 3);
	assert_int_equal(seq_n("\xed\x9f\xbf", 3), 3);
	assert_int_equal(seq_n("\xf0\x90\x80\x80", 4), 4);
	assert_int_equal(seq_n("\xf4\x8f\xbf\xbf", 4), 4);
	assert_int_equal(seq_n("\xe2\x82\xac\xff", 4), 3); /* what follows is not read */

	/* every proper prefix of a good sequence is cut, not refused */
	static const char *const good[] = {"\xc3\xa9",     "\xe2\x82\xac",     "\xe0\xa0\x80",
	                                   "\xed\x9f\xbf", "\xf0\x9f\x90\x86", "\xf4\x8f\xbf\xbf"};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		for (size_t n = 0; n < strlen(good[i]); n++)
			if (seq_n(good[i], n) != TEXT_UTF8_CUT)
				fail_msg("prefix of %zu bytes of #%zu not TEXT_UTF8_CUT", n, i);

	/* a bad byte is refused as soon as it is there, before the end */
	assert_int_equal(seq_n("\x80", 1), 0); /* no lead */
	assert_int_equal(seq_n("\xc0", 1), 0); /* leads only overlong forms */
	assert_int_equal(seq_n("\xc1", 1), 0);
	assert_int_equal(seq_n("\xf5", 1), 0); /* past U+10FFFF */
	assert_int_equal(seq_n("\xff", 1), 0);
	assert_int_equal(seq_n("\xe0\x9f", 2), 0);     /* overlong, known at byte 2 */
	assert_int_equal(seq_n("\xed\xa0", 2), 0);     /* a surrogate */
	assert_int_equal(seq_n("\xf0\x8f", 2), 0);     /* overlong */
	assert_int_equal(seq_n("\xf4\x90", 2), 0);     /* past U+10FFFF */
	assert_int_equal(seq_n("\xe2\x82\x41", 3), 0); /* 'A' is no continuation */
	assert_int_equal(seq_n("\xf0\x9f\x90\x00", 4), 0);
}

static void test_bounded_validation_and_encoding(void **state)
{
	(void)state;
	assert_true(text_utf8_valid("", 0));
	assert_true(text_utf8_valid("a\0b\x01\xc2\x85", 6)); /* NUL and controls are UTF-8 */
	assert_true(text_utf8_valid("caf\xc3\xa9", 5));
	assert_false(text_utf8_valid("caf\xc3\xa9", 4)); /* cut by the length */
	assert_false(text_utf8_valid("\xed\xa0\x80", 3));
	assert_false(text_utf8_valid("ok\xc0\xaf", 4));

	/* every code point's encoding decodes back to its length; surrogates
	 * are encoded as asked, and refused by the decoder */
	for (uint32_t cp = 0; cp <= 0x10ffff; cp++) {
		char b[4];
		size_t n = text_utf8_put(cp, b);
		size_t want = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
		if (n != want)
			fail_msg("U+%04X: %zu bytes", (unsigned)cp, n);
		int k = text_utf8_seq_n(b, n);
		if (cp >= 0xd800 && cp <= 0xdfff ? k != 0 : k != (int)n)
			fail_msg("U+%04X does not decode back", (unsigned)cp);
	}
	char b[4];
	assert_int_equal(text_utf8_put(0x20ac, b), 3);
	assert_memory_equal(b, "\xe2\x82\xac", 3);
	assert_int_equal(text_utf8_put(0x1f406, b), 4);
	assert_memory_equal(b, "\xf0\x9f\x90\x86", 4);
}

static void test_blank_text(void **state)
{
	(void)state;
	assert_true(text_blank(NULL));
	assert_true(text_blank(""));
	assert_true(text_blank(" \t\r\n "));
	assert_false(text_blank("  x "));
	assert_false(text_blank("\xc2\xa0")); /* NBSP is a character */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_well_formed_sequences_are_accepted),
	    cmocka_unit_test(test_overlong_forms_are_refused),
	    cmocka_unit_test(test_surrogates_and_past_u10ffff_are_refused),
	    cmocka_unit_test(test_cut_and_stray_sequences_are_refused),
	    cmocka_unit_test(test_control_characters_follow_the_flags),
	    cmocka_unit_test(test_lengths_are_characters_not_bytes),
	    cmocka_unit_test(test_byte_bound_stops_the_scan),
	    cmocka_unit_test(test_bounded_decoder_tells_cut_from_refused),
	    cmocka_unit_test(test_bounded_validation_and_encoding),
	    cmocka_unit_test(test_blank_text),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
