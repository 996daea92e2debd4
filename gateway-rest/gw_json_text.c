/*
 * gw_json_text.c - the text forms of the proto3 JSON mapping that are not
 * plain JSON: RFC 3339 timestamps and durations (gw_json.h). Pure
 * functions over bytes, bounded by their length arguments; no allocation.
 * `bytes` are panthera/base64.h's, and UTF-8 is checked by panthera/text.h.
 *
 * Calendar arithmetic is the proleptic Gregorian calendar counted in days
 * from 0001-01-01 (day 0), the range google.protobuf.Timestamp allows.
 */
#include "gw_json.h"

#include <stdint.h>
#include <string.h>

/* Seconds from 0001-01-01T00:00:00Z to the epoch, and to the end of 9999. */
#define TS_MIN_SECONDS (-62135596800LL)
#define TS_MAX_SECONDS 253402300799LL
/* Days from 0001-01-01 to 1970-01-01. */
#define EPOCH_DAY 719162
/* Duration bound of google/protobuf/duration.proto: about 10000 years. */
#define DURATION_MAX_SECONDS 315576000000LL

static int is_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
	static const unsigned char days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

/* Days before month m (1..12) in a year. */
static int days_before_month(int y, int m)
{
	static const unsigned short before[12] = {0,   31,  59,  90,  120, 151,
	                                          181, 212, 243, 273, 304, 334};
	return before[m - 1] + (m > 2 && is_leap(y));
}

/* Day number (0 = 0001-01-01) of y-m-d, for 1 <= y <= 9999. */
static int64_t day_number(int y, int m, int d)
{
	int64_t p = y - 1; /* whole years before y */
	return p * 365 + p / 4 - p / 100 + p / 400 + days_before_month(y, m) + d - 1;
}

/* Inverse of day_number() for day >= 0. */
static void civil_date(int64_t day, int *y, int *m, int *d)
{
	int64_t n400 = day / 146097; /* days in 400 years */
	int64_t r = day % 146097;
	int64_t n100 = r / 36524; /* days in 100 years but the 400th */
	if (n100 == 4)            /* the last day of a 400-year cycle */
		n100 = 3;
	r -= n100 * 36524;
	int64_t n4 = r / 1461; /* days in 4 years */
	r %= 1461;
	int64_t n1 = r / 365;
	if (n1 == 4) /* the last day of a leap year */
		n1 = 3;
	r -= n1 * 365;
	int year = (int)(n400 * 400 + n100 * 100 + n4 * 4 + n1 + 1);
	int month = 1;
	while (month < 12 && days_before_month(year, month + 1) <= r)
		month++;
	*y = year;
	*m = month;
	*d = (int)(r - days_before_month(year, month)) + 1;
}

/* n decimal digits at s into *v; 0, or -1 when one is not a digit. */
static int digits(const char *s, int n, int *v)
{
	int x = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		x = x * 10 + (s[i] - '0');
	}
	*v = x;
	return 0;
}

/* ".f{1,9}" at s[0..n): the nanos it stands for, and bytes used (0 when no
 * '.'); -1 for a '.' without digits or more than 9 digits. */
static int fraction(const char *s, size_t n, int32_t *nanos, size_t *used)
{
	*nanos = 0;
	*used = 0;
	if (n == 0 || s[0] != '.')
		return 0;
	size_t i = 1;
	int32_t v = 0;
	while (i < n && s[i] >= '0' && s[i] <= '9') {
		if (i > 9)
			return -1;
		v = v * 10 + (s[i] - '0');
		i++;
	}
	if (i == 1)
		return -1;
	for (size_t k = i - 1; k < 9; k++)
		v *= 10;
	*nanos = v;
	*used = i;
	return 0;
}

int gw_json_timestamp_parse(const char *s, size_t n, int64_t *seconds, int32_t *nanos,
                            const char **why)
{
	int y, mo, d, h, mi, se;
	*why = "not an RFC 3339 timestamp (YYYY-MM-DDTHH:MM:SSZ)";
	if (n < 20 || digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) || s[7] != '-' ||
	    digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') || digits(s + 11, 2, &h) ||
	    s[13] != ':' || digits(s + 14, 2, &mi) || s[16] != ':' || digits(s + 17, 2, &se))
		return -1;
	if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 ||
	    se > 59) {
		*why = "timestamp has a field out of range";
		return -1;
	}
	size_t used;
	int32_t ns;
	if (fraction(s + 19, n - 19, &ns, &used) != 0) {
		*why = "timestamp fraction must have 1 to 9 digits";
		return -1;
	}
	size_t i = 19 + used;
	int64_t offset = 0;
	if (i == n - 1 && (s[i] == 'Z' || s[i] == 'z')) {
		offset = 0;
	} else if (i + 6 == n && (s[i] == '+' || s[i] == '-')) {
		int oh, om;
		if (digits(s + i + 1, 2, &oh) || s[i + 3] != ':' || digits(s + i + 4, 2, &om))
			return -1;
		if (oh > 23 || om > 59) {
			*why = "timestamp offset out of range";
			return -1;
		}
		offset = (int64_t)(oh * 3600 + om * 60) * (s[i] == '-' ? -1 : 1);
	} else {
		*why = "timestamp needs a 'Z' or a +HH:MM offset";
		return -1;
	}
	int64_t t = (day_number(y, mo, d) - EPOCH_DAY) * 86400 + h * 3600 + mi * 60 + se - offset;
	if (t < TS_MIN_SECONDS || t > TS_MAX_SECONDS) {
		*why = "timestamp before 0001-01-01 or after 9999-12-31 (UTC)";
		return -1;
	}
	*seconds = t;
	*nanos = ns;
	*why = NULL;
	return 0;
}

static char *put_digits(char *p, unsigned v, int width)
{
	for (int i = width - 1; i >= 0; i--) {
		p[i] = (char)('0' + v % 10);
		v /= 10;
	}
	return p + width;
}

/* ".fff", ".ffffff" or ".fffffffff" for nanos in 1..999999999. */
static char *put_fraction(char *p, uint32_t nanos)
{
	*p++ = '.';
	if (nanos % 1000000 == 0)
		return put_digits(p, nanos / 1000000, 3);
	if (nanos % 1000 == 0)
		return put_digits(p, nanos / 1000, 6);
	return put_digits(p, nanos, 9);
}

size_t gw_json_timestamp_format(int64_t seconds, int32_t nanos, char out[GW_JSON_TIMESTAMP_MAX])
{
	if (seconds < TS_MIN_SECONDS || seconds > TS_MAX_SECONDS || nanos < 0 || nanos > 999999999)
		return 0;
	int64_t from_year1 = seconds - TS_MIN_SECONDS; /* >= 0 */
	int64_t day = from_year1 / 86400;
	int64_t sec = from_year1 % 86400;
	int y, m, d;
	civil_date(day, &y, &m, &d);
	char *p = out;
	p = put_digits(p, (unsigned)y, 4);
	*p++ = '-';
	p = put_digits(p, (unsigned)m, 2);
	*p++ = '-';
	p = put_digits(p, (unsigned)d, 2);
	*p++ = 'T';
	p = put_digits(p, (unsigned)(sec / 3600), 2);
	*p++ = ':';
	p = put_digits(p, (unsigned)(sec / 60 % 60), 2);
	*p++ = ':';
	p = put_digits(p, (unsigned)(sec % 60), 2);
	if (nanos != 0)
		p = put_fraction(p, (uint32_t)nanos);
	*p++ = 'Z';
	*p = '\0';
	return (size_t)(p - out);
}

int gw_json_duration_parse(const char *s, size_t n, int64_t *seconds, int32_t *nanos,
                           const char **why)
{
	*why = "not a duration (such as \"1.5s\")";
	size_t i = 0;
	int neg = 0;
	if (i < n && s[i] == '-') {
		neg = 1;
		i++;
	}
	size_t start = i;
	int64_t v = 0;
	while (i < n && s[i] >= '0' && s[i] <= '9') {
		if (i - start >= 12) { /* 315576000000 has 12 digits */
			*why = "duration out of range";
			return -1;
		}
		v = v * 10 + (s[i] - '0');
		i++;
	}
	if (i == start)
		return -1;
	size_t used;
	int32_t ns;
	if (fraction(s + i, n - i, &ns, &used) != 0) {
		*why = "duration fraction must have 1 to 9 digits";
		return -1;
	}
	i += used;
	if (i != n - 1 || s[i] != 's')
		return -1;
	if (v > DURATION_MAX_SECONDS) {
		*why = "duration out of range";
		return -1;
	}
	*seconds = neg ? -v : v;
	*nanos = neg ? -ns : ns;
	*why = NULL;
	return 0;
}

size_t gw_json_duration_format(int64_t seconds, int32_t nanos, char out[GW_JSON_DURATION_MAX])
{
	if (seconds < -DURATION_MAX_SECONDS || seconds > DURATION_MAX_SECONDS ||
	    nanos < -999999999 || nanos > 999999999 || (seconds > 0 && nanos < 0) ||
	    (seconds < 0 && nanos > 0))
		return 0;
	char *p = out;
	if (seconds < 0 || nanos < 0)
		*p++ = '-';
	uint64_t s = (uint64_t)(seconds < 0 ? -seconds : seconds);
	uint32_t ns = (uint32_t)(nanos < 0 ? -nanos : nanos);
	char tmp[20];
	int k = 0;
	do {
		tmp[k++] = (char)('0' + s % 10);
		s /= 10;
	} while (s != 0);
	while (k > 0)
		*p++ = tmp[--k];
	if (ns != 0)
		p = put_fraction(p, ns);
	*p++ = 's';
	*p = '\0';
	return (size_t)(p - out);
}
