/*
 * check.c - validation of accepted text; see auth_check.h.
 */
#include "auth_check.h"

#include <stdio.h>
#include <string.h>

#include "panthera/text.h"

const char *auth_check_email(const char *email)
{
	static const char bad[] = "must be an email address of at most 254 characters";
	if (email == NULL || text_chars(email, AUTH_EMAIL_MAX, 0) < 3)
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
	if (!text_valid(password, AUTH_PASSWORD_MIN, AUTH_PASSWORD_MAX, TEXT_ANY_CONTROL))
		return "must be 8 to 128 characters";
	return NULL;
}

int auth_text_ok(const char *s, long min, long max)
{
	return min >= 0 && max >= 0 && text_valid(s, (size_t)min, (size_t)max, 0);
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
