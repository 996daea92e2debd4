/*
 * check.c - validation of accepted text; see auth_check.h.
 */
#include "auth_check.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

long auth_utf8_chars(const char *s, size_t max_bytes, int no_controls)
{
	if (s == NULL)
		return 0;
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	long chars = 0;
	while (p[i] != '\0') {
		if (i >= max_bytes)
			return -1;
		unsigned char c = p[i];
		uint32_t cp;
		size_t len;
		if (c < 0x80) {
			if (no_controls && (c < 0x20 || c == 0x7f))
				return -1;
			i++;
			chars++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			cp = c & 0x1f;
			len = 2;
		} else if ((c & 0xf0) == 0xe0) {
			cp = c & 0x0f;
			len = 3;
		} else if ((c & 0xf8) == 0xf0) {
			cp = c & 0x07;
			len = 4;
		} else {
			return -1;
		}
		for (size_t k = 1; k < len; k++) {
			if ((p[i + k] & 0xc0) != 0x80) /* also stops at the NUL */
				return -1;
			cp = cp << 6 | (p[i + k] & 0x3f);
		}
		static const uint32_t least[5] = {0, 0, 0x80, 0x800, 0x10000};
		if (cp < least[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return -1;
		i += len;
		if (i > max_bytes)
			return -1;
		chars++;
	}
	return chars;
}

const char *auth_check_email(const char *email)
{
	static const char bad[] = "must be an email address of at most 254 characters";
	if (email == NULL || auth_utf8_chars(email, AUTH_EMAIL_MAX, 1) < 3)
		return bad;
	const char *at = strchr(email, '@');
	if (at == NULL || strchr(at + 1, '@') != NULL || at == email || at - email > 64)
		return bad;
	const char *domain = at + 1;
	size_t n = strlen(domain);
	if (n < 3 || domain[0] == '.' || domain[n - 1] == '.' || strstr(domain, "..") != NULL ||
	    strchr(domain, '.') == NULL)
		return bad;
	for (const char *p = email; *p != '\0'; p++) {
		if (*p == ' ' || *p == '<' || *p == '>' || *p == ',' || *p == ';' || *p == '"' ||
		    *p == '\\' || *p == '(' || *p == ')' || *p == '[' || *p == ']')
			return bad;
	}
	return NULL;
}

const char *auth_check_password(const char *password)
{
	long n = auth_utf8_chars(password, 4 * AUTH_PASSWORD_MAX, 0);
	if (n < AUTH_PASSWORD_MIN || n > AUTH_PASSWORD_MAX)
		return "must be 8 to 128 characters";
	return NULL;
}

int auth_text_ok(const char *s, long min, long max)
{
	long n = auth_utf8_chars(s, 4 * (size_t)max, 1);
	return n >= min && n <= max;
}

const char *auth_check_country(const char *s, char out[3])
{
	if (s == NULL || strlen(s) != 2)
		return "must be an ISO 3166-1 alpha-2 code such as \"US\"";
	for (int i = 0; i < 2; i++) {
		char c = s[i];
		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		if (c < 'A' || c > 'Z')
			return "must be an ISO 3166-1 alpha-2 code such as \"US\"";
		out[i] = c;
	}
	out[2] = '\0';
	return NULL;
}
