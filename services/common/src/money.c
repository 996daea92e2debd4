/*
 * money.c - parsing and printing amounts; see money.h.
 */
#include "panthera/money.h"

#include <inttypes.h>
#include <stdio.h>

int money_parse(const char *s, int64_t *cents)
{
	if (s == NULL)
		return -1;
	int64_t units = 0, frac = 0;
	size_t i = 0;
	for (; s[i] >= '0' && s[i] <= '9'; i++) {
		if (i == 10)
			return -1;
		units = units * 10 + (s[i] - '0');
	}
	if (i == 0)
		return -1;
	if (s[i] == '.') {
		size_t d = 0;
		for (i++; s[i] >= '0' && s[i] <= '9'; i++, d++) {
			if (d == 2)
				return -1;
			frac = frac * 10 + (s[i] - '0');
		}
		if (d == 0)
			return -1;
		if (d == 1)
			frac *= 10;
	}
	if (s[i] != '\0')
		return -1;
	*cents = units * 100 + frac;
	return 0;
}

void money_format(char out[MONEY_TEXT], int64_t cents)
{
	/* the magnitude as unsigned: -INT64_MIN does not fit int64_t */
	uint64_t m = cents < 0 ? (uint64_t)0 - (uint64_t)cents : (uint64_t)cents;
	snprintf(out, MONEY_TEXT, "%s%" PRIu64 ".%02u", cents < 0 ? "-" : "", m / 100,
	         (unsigned)(m % 100));
}

int money_currency_valid(const char *s)
{
	if (s == NULL)
		return 0;
	for (int i = 0; i < 3; i++)
		if (s[i] < 'A' || s[i] > 'Z')
			return 0;
	return s[3] == '\0';
}
