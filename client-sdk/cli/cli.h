/*
 * cli.h - internals of the `panthera` command-line tool (client-sdk/cli/),
 * the grpcurl of Panthera's wire: list, describe, call, health.
 *
 *   panthera.c     arguments, the channel, the commands, exit statuses.
 *   cli_describe.c what a server's reflection answers: finding a service,
 *                  method, message or enum in its FileDescriptorSet, and
 *                  printing them in .proto syntax.
 *   cli_types.c    the protobuf-c message types this binary was built with
 *                  (every service of gen/, listed at build time into
 *                  $(BUILD)/cli/known_services.c): `call` needs the C
 *                  descriptors of a method's messages to transcode JSON, so
 *                  it can call any server that speaks those types, even one
 *                  it was not built for, but not a method of types it does
 *                  not know (docs/cli.md says so).
 *
 * Not a library: one short process; errors are reported once, on stderr,
 * by the command that meets them.
 */
#ifndef PANTHERA_CLI_H
#define PANTHERA_CLI_H

#include <stdio.h>

#include "google/protobuf/descriptor.pb-c.h"
#include "panthera/rpc.h"

/* ---- cli_describe.c ---- */

typedef Google__Protobuf__FileDescriptorSet cli_fdset;
typedef Google__Protobuf__FileDescriptorProto cli_file;
typedef Google__Protobuf__DescriptorProto cli_message;
typedef Google__Protobuf__EnumDescriptorProto cli_enum;
typedef Google__Protobuf__ServiceDescriptorProto cli_service;
typedef Google__Protobuf__MethodDescriptorProto cli_method;

/* What a fully qualified name ("pkg.Service", "pkg.Service.Method",
 * "pkg.Service/Method", "pkg.Msg", "pkg.Msg.Nested", "pkg.Enum") names in
 * a set. At most one of the pointers is set. */
typedef struct cli_symbol {
	const cli_file *file;
	const cli_service *service;
	const cli_method *method; /* with `service` set too */
	const cli_message *message;
	const cli_enum *enumeration;
	char full_name[512]; /* of the message or enum, or of the service */
} cli_symbol;

/* Find `name` in `set`; a leading '.' or '/' is ignored. 1 when found. */
int cli_find_symbol(const cli_fdset *set, const char *name, cli_symbol *out);

/* The message named `type_name` (".pkg.Msg" or "pkg.Msg"), or NULL. */
const cli_message *cli_find_message(const cli_fdset *set, const char *type_name);

/* Print a service (its methods), a method (its line, then its input and
 * output messages), a message (its fields, nested types after) or an enum
 * (its values), in .proto syntax with full type names. */
void cli_print_symbol(FILE *out, const cli_fdset *set, const cli_symbol *sym);

/* ---- cli_types.c ---- */

/* The compiled protobuf-c descriptor of message `full_name` ("pkg.Msg", no
 * leading dot) among the types this binary knows, or NULL. */
const ProtobufCMessageDescriptor *cli_known_message(const char *full_name);

/* Generated into $(BUILD)/cli/known_services.c by the Makefile. */
extern const rpc_service_desc *const cli_known_services[];
extern const size_t cli_n_known_services;

#endif /* PANTHERA_CLI_H */
