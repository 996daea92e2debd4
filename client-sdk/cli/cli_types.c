/*
 * cli_types.c - the message types compiled into the `panthera` CLI.
 *
 * The roots are the services of gen/ (cli_known_services, listed by the
 * Makefile); every message reachable from their methods' inputs and
 * outputs, through message-typed fields, is known. A search, not an index:
 * the CLI looks up two types per run.
 */
#include "cli.h"

#include <string.h>

/* Deep enough for every message of the platform; a cycle (a message that
 * holds itself) ends here too. */
#define CLI_TYPE_DEPTH 16

static const ProtobufCMessageDescriptor *search(const ProtobufCMessageDescriptor *d,
                                                const char *full_name, unsigned depth)
{
	if (d == NULL || depth > CLI_TYPE_DEPTH)
		return NULL;
	if (strcmp(d->name, full_name) == 0)
		return d;
	for (unsigned i = 0; i < d->n_fields; i++) {
		if (d->fields[i].type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		const ProtobufCMessageDescriptor *r =
		    search(d->fields[i].descriptor, full_name, depth + 1);
		if (r != NULL)
			return r;
	}
	return NULL;
}

const ProtobufCMessageDescriptor *cli_known_message(const char *full_name)
{
	for (size_t s = 0; s < cli_n_known_services; s++) {
		const rpc_service_desc *svc = cli_known_services[s];
		for (size_t m = 0; m < svc->n_methods; m++) {
			const ProtobufCMessageDescriptor *r =
			    search(svc->methods[m].input, full_name, 0);
			if (r == NULL)
				r = search(svc->methods[m].output, full_name, 0);
			if (r != NULL)
				return r;
		}
	}
	return NULL;
}
