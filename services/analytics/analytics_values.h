/*
 * analytics_values.h - the text forms the analytics service reads and
 * writes (internal): UTC days "YYYY-MM-DD", money "12.50", currency codes,
 * and product names carried by events. Pure functions; any thread.
 */
#ifndef PANTHERA_ANALYTICS_VALUES_H
#define PANTHERA_ANALYTICS_VALUES_H

#include <stddef.h>
#include <stdint.h>

/* "-92233720368547758.08" and a NUL fit. */
#define ANALYTICS_MONEY_TEXT 32
/* "YYYY-MM-DD" and a NUL. */
#define ANALYTICS_DAY_TEXT 11

/*
 * Parse exactly "YYYY-MM-DD" (years 0001..9999, a real Gregorian date) into
 * *day, the number of days since 1970-01-01 (negative before). 0 on
 * success, -1 otherwise (*day untouched).
 */
int analytics_day_parse(const char *s, int64_t *day);

/*
 * Parse an amount ^\d{1,10}(\.\d{1,2})?$ (what numeric(12,2) holds; no
 * sign) into cents. 0 on success, -1 otherwise (*cents untouched).
 */
int analytics_money_parse(const char *s, int64_t *cents);

/* Cents as a decimal string with two places: 1250 -> "12.50",
 * -5 -> "-0.05", any int64 included. */
void analytics_money_format(int64_t cents, char out[ANALYTICS_MONEY_TEXT]);

/* 1 when `s` is 3 upper-case ASCII letters (an ISO 4217 code's shape). */
int analytics_currency_valid(const char *s);

/* 1 when `s` is well-formed UTF-8 (no overlong forms, surrogates or code
 * points past U+10FFFF) of at most max_bytes bytes, without control
 * characters. */
int analytics_text_valid(const char *s, size_t max_bytes);

#endif /* PANTHERA_ANALYTICS_VALUES_H */
