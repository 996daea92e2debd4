/*
 * money.h - amounts of money as the services carry them: integer cents in
 * C, NUMERIC(12,2) in SQL, decimal strings with two places on the wire
 * ("12.50"). Ten integer digits is what NUMERIC(12,2) holds, so every
 * amount parsed here fits int64_t with room for sums of many lines.
 */
#ifndef PANTHERA_MONEY_H
#define PANTHERA_MONEY_H

#include <stdint.h>

/* "9999999999.99" plus a sign and NUL, with room to spare */
#define MONEY_TEXT 24

/*
 * Parse ^\d{1,10}(\.\d{1,2})?$ into cents. Returns 0, or -1 (and leaves
 * *cents alone) for NULL, a sign, an exponent, more digits, or anything
 * else. PostgreSQL's numeric(12,2) text ("12.50") always parses.
 */
int money_parse(const char *s, int64_t *cents);

/* Cents as the wire's decimal string: 1250 -> "12.50", -5 -> "-0.05". */
void money_format(char out[MONEY_TEXT], int64_t cents);

/* 1 when `s` looks like an ISO 4217 code: three capital letters. */
int money_currency_valid(const char *s);

#endif /* PANTHERA_MONEY_H */
