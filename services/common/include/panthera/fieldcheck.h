/*
 * fieldcheck.h - request validation that reports every bad field at once.
 *
 * A handler checks each field of its request and calls field_refuse() for
 * each problem: the problem becomes a google.rpc.BadRequest field violation
 * of the call (rpc_call_add_field_violation). field_checked() then answers
 * OK, or INVALID_ARGUMENT with the first problem as the message ("price
 * must be positive", "... (and 2 more problems)").
 *
 * Thread-safety: a field_checker belongs to one call, on its worker.
 */
#ifndef PANTHERA_FIELDCHECK_H
#define PANTHERA_FIELDCHECK_H

#include "panthera/rpc.h"

typedef struct field_checker {
	rpc_call *call;
	int refused;     /* problems so far */
	char first[256]; /* "<field> <why>" of the first */
} field_checker;

/* One problem: `field` (the proto name) `why` (a phrase, "must be a UUID"). */
void field_refuse(field_checker *k, const char *field, const char *why);

/* OK when nothing was refused, else the call's INVALID_ARGUMENT error. */
rpc_status field_checked(const field_checker *k);

#endif /* PANTHERA_FIELDCHECK_H */
