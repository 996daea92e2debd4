/*
 * ids.h - identifiers for Panthera's services.
 */
#ifndef PANTHERA_IDS_H
#define PANTHERA_IDS_H

#include "panthera/rpc_status.h"

/* Length of a UUID in text form, without the NUL. */
#define ID_UUID_LEN 36

/*
 * A random (version 4, RFC 9562) UUID from OpenSSL's CSPRNG, written as 36
 * lower-case characters and a NUL into out[37]. INTERNAL when the generator
 * fails (out is then ""). Thread-safe.
 */
rpc_status id_uuid4(char out[ID_UUID_LEN + 1]);

/* 1 when `s` is a UUID in the canonical 8-4-4-4-12 hex form (either case). */
int id_is_uuid(const char *s);

#endif /* PANTHERA_IDS_H */
