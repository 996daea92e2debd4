/*
 * analytics_values.h - the text forms the analytics service reads and
 * writes (internal): UTC days "YYYY-MM-DD" (money and currency codes:
 * panthera/money.h; product names carried by events: panthera/text.h).
 * Pure functions; any thread.
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

#endif /* PANTHERA_ANALYTICS_VALUES_H */
