/*
 * reflection.c - panthera.reflection.v1.ServerReflection, which every
 * server answers (rpc_server_create() registers it, as it does health).
 *
 * ListServices names the registered services; GetFileDescriptorSet returns
 * a serialized google.protobuf.FileDescriptorSet built from the descriptors
 * protoc-gen-panthera embeds in each rpc_service_desc (files[]): the union
 * of the services' files, each once, in the order met. Each service's list
 * has every file after its imports, and a file already emitted came earlier
 * still, so the union keeps that order.
 *
 * The set is not decoded and re-encoded: FileDescriptorSet is
 * `repeated FileDescriptorProto file = 1`, so its bytes are, per file, the
 * tag 0x0a, the length as a varint, and the stored bytes. Everything lives
 * in the call's arena.
 */
#include "rpc_internal.h"

#include <stdlib.h>
#include <string.h>

#include "panthera/reflection/v1/reflection.panthera.h"

typedef Panthera__Reflection__V1__ListServicesRequest list_req;
typedef Panthera__Reflection__V1__ListServicesResponse list_resp;
typedef Panthera__Reflection__V1__GetFileDescriptorSetRequest fds_req;
typedef Panthera__Reflection__V1__GetFileDescriptorSetResponse fds_resp;

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static rpc_status reflection_list_services(rpc_call *call, const list_req *req, list_resp *resp,
                                           void *user)
{
	(void)req;
	const rpc_service_desc *svcs[RPC_MAX_SERVICES];
	size_t n = rpc_server_services(user, svcs, RPC_MAX_SERVICES);
	if (n > RPC_MAX_SERVICES)
		n = RPC_MAX_SERVICES;
	char **names = rpc_call_alloc(call, (n ? n : 1) * sizeof(*names));
	if (names == NULL)
		return rpc_call_error(call, RPC_STATUS_RESOURCE_EXHAUSTED,
		                      "no memory for the list of services");
	for (size_t i = 0; i < n; i++)
		names[i] = (char *)svcs[i]->name; /* read-only: only packed */
	qsort(names, n, sizeof(*names), cmp_name);
	resp->services = names;
	resp->n_services = n;
	return RPC_STATUS_OK;
}

/* Bytes of `v` as a protobuf varint. */
static size_t varint_size(size_t v)
{
	size_t n = 1;
	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static uint8_t *put_varint(uint8_t *p, size_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

static rpc_status reflection_get_file_descriptor_set(rpc_call *call, const fds_req *req,
                                                     fds_resp *resp, void *user)
{
	const rpc_service_desc *all[RPC_MAX_SERVICES];
	size_t n_all = rpc_server_services(user, all, RPC_MAX_SERVICES);
	if (n_all > RPC_MAX_SERVICES)
		n_all = RPC_MAX_SERVICES;

	/* The services asked for, in the order asked (all when none). */
	const rpc_service_desc *chosen[RPC_MAX_SERVICES];
	size_t n_chosen = 0;
	if (req->n_services == 0) {
		memcpy(chosen, all, n_all * sizeof(*all));
		n_chosen = n_all;
	}
	for (size_t i = 0; i < req->n_services; i++) {
		const char *want = req->services[i] ? req->services[i] : "";
		const rpc_service_desc *found = NULL;
		for (size_t j = 0; j < n_all && found == NULL; j++) {
			if (strcmp(all[j]->name, want) == 0)
				found = all[j];
		}
		if (found == NULL)
			return rpc_call_error(call, RPC_STATUS_NOT_FOUND,
			                      "service %.200s is not served here", want);
		int dup = 0;
		for (size_t j = 0; j < n_chosen; j++)
			dup |= chosen[j] == found;
		if (!dup)
			chosen[n_chosen++] = found;
	}

	/* The union of their files, each once, in the order met. */
	size_t cap = 0;
	for (size_t i = 0; i < n_chosen; i++) {
		if (chosen[i]->n_files > SIZE_MAX / sizeof(void *) - cap)
			return rpc_call_error(call, RPC_STATUS_INTERNAL, "too many descriptors");
		cap += chosen[i]->n_files;
	}
	const rpc_file_descriptor **files = rpc_call_alloc(call, (cap ? cap : 1) * sizeof(*files));
	if (files == NULL)
		return rpc_call_error(call, RPC_STATUS_RESOURCE_EXHAUSTED,
		                      "no memory for the descriptor set");
	size_t n_files = 0, total = 0;
	for (size_t i = 0; i < n_chosen; i++) {
		for (size_t k = 0; k < chosen[i]->n_files; k++) {
			const rpc_file_descriptor *f = &chosen[i]->files[k];
			int seen = 0;
			for (size_t j = 0; j < n_files && !seen; j++)
				seen = strcmp(files[j]->name, f->name) == 0;
			if (seen)
				continue;
			size_t add = 1 + varint_size(f->len);
			if (f->len > SIZE_MAX - add || total > SIZE_MAX - add - f->len)
				return rpc_call_error(call, RPC_STATUS_INTERNAL,
				                      "descriptor set too large");
			total += add + f->len;
			files[n_files++] = f;
		}
	}

	uint8_t *buf = rpc_call_alloc(call, total ? total : 1);
	if (buf == NULL)
		return rpc_call_error(call, RPC_STATUS_RESOURCE_EXHAUSTED,
		                      "no memory for the descriptor set (%zu bytes)", total);
	uint8_t *p = buf;
	for (size_t j = 0; j < n_files; j++) {
		*p++ = 0x0a; /* field 1, length-delimited */
		p = put_varint(p, files[j]->len);
		if (files[j]->len > 0)
			memcpy(p, files[j]->data, files[j]->len);
		p += files[j]->len;
	}
	resp->file_descriptor_set.data = buf;
	resp->file_descriptor_set.len = total;
	return RPC_STATUS_OK;
}

static const panthera_reflection_v1_server_reflection_handlers reflection_handlers = {
    .list_services = reflection_list_services,
    .get_file_descriptor_set = reflection_get_file_descriptor_set,
};

rpc_status rpc_reflection_register(rpc_server *srv)
{
	return panthera_reflection_v1_server_reflection_register(srv, &reflection_handlers, srv);
}
