/*
 * analytics_values.h - the text forms the analytics service reads and
 * writes (internal): UTC days "YYYY-MM-DD" and product names carried by
 * events (money and currency codes: panthera/money.h). Pure functions; any
 * thread.
 */
#ifndef PANTHERA_ANALYTICS_VALUES_H
#define PANTHERA_ANALYTICS_VALUES_H

#include <stddef.h>
#include <stdint.h>

#include "panthera/money.h"

/* "YYYY-MM-DD" and a NUL. */
#define ANALYTICS_DAY_TEXT 11

/*
 * Parse exactly "YYYY-MM-DD" (years 0001..9999, a real Gregorian date) into
 * *day, the number of days since 1970-01-01 (negative before). 0 on
 * success, -1 otherwise (*day untouched).
 */
int analytics_day_parse(const char *s, int64_t *day);

/* 1 when `s` is well-formed UTF-8 (no overlong forms, surrogates or code
 * points past U+10FFFF) of at most max_bytes bytes, without control
 * characters. */
int analytics_text_valid(const char *s, size_t max_bytes);

#endif /* PANTHERA_ANALYTICS_VALUES_H */
