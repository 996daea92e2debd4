/*
 * auth_check.h - validation of the text the auth service accepts (internal).
 * Each check returns NULL when the value is acceptable, else a short
 * sentence for a field violation ("must be 8 to 128 characters"). Lengths
 * are counted in Unicode code points of valid UTF-8 (panthera/text.h); pure
 * functions, thread-safe.
 */
#ifndef PANTHERA_AUTH_CHECK_H
#define PANTHERA_AUTH_CHECK_H

#include <stddef.h>

#define AUTH_PASSWORD_MIN 8
#define AUTH_PASSWORD_MAX 128
#define AUTH_EMAIL_MAX    254
#define AUTH_NAME_MAX     100

/* An address: one '@', a local part of 1..64 bytes, a domain of labels
 * joined by dots (at least two), no space or control, at most 254 bytes. */
const char *auth_check_email(const char *email);

/* 8..128 characters of valid UTF-8 (anything else is allowed). */
const char *auth_check_password(const char *password);

/* 1 when `s` is min..max characters of valid UTF-8 without control
 * characters, else 0. */
int auth_text_ok(const char *s, long min, long max);

/* Two ASCII letters (ISO 3166-1 alpha-2); upper-cased into out[3]. */
const char *auth_check_country(const char *s, char out[3]);

#endif /* PANTHERA_AUTH_CHECK_H */
