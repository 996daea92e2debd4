/*
 * values.c - the analytics service's text forms; see analytics_values.h.
 * Every parser takes a NUL-terminated string of any content and length and
 * reads no byte past the first one it refuses.
 */
#include "analytics_values.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* n decimal digits at s into *out; 0 when they all are digits. */
static int digits(const char *s, size_t n, int *out)
{
	int v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

static int leap_year(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar: the
 * year is counted from March, so the leap day ends it (H. Hinnant's
 * days_from_civil). */
static int64_t days_from_civil(int y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;                                  /* 0..399 */
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1; /* 0..365 */
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;          /* 0..146096 */
	return era * 146097 + doe - 719468;
}

int analytics_day_parse(const char *s, int64_t *day)
{
	static const int month_days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int y, m, d;
	/* each check stops at the first byte that is not what it wants, so a
	 * short string is refused before its NUL is passed */
	if (digits(s, 4, &y) != 0 || s[4] != '-' || digits(s + 5, 2, &m) != 0 || s[7] != '-' ||
	    digits(s + 8, 2, &d) != 0 || s[10] != '\0')
		return -1;
	if (y < 1 || m < 1 || m > 12 || d < 1)
		return -1;
	int last = month_days[m - 1] + (m == 2 && leap_year(y));
	if (d > last)
		return -1;
	*day = days_from_civil(y, m, d);
	return 0;
}
