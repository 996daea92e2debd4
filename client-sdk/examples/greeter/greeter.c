/*
 * greeter.c - a Panthera service from .proto to a served and called method.
 *
 * Serves example.greeter.v1.Greeter on a URL (default inproc://greeter, in
 * this same process) and calls it through the generated typed client stub:
 *
 *     greeter [URL] [NAME]
 *
 * Build: see the Makefile beside this file (protoc + protoc-gen-panthera,
 * then cc with libpanthera).
 */
#include <stdio.h>
#include <string.h>

#include "greeter.panthera.h"

/* The handler: read `req`, fill `resp` from the call's arena, return a status. */
static rpc_status say_hello(rpc_call *call, const Example__Greeter__V1__HelloRequest *req,
                            Example__Greeter__V1__HelloReply *resp, void *user)
{
	(void)user;
	size_t n = strlen(req->name);
	if (n == 0 || n > 100)
		return rpc_call_error(call, RPC_STATUS_INVALID_ARGUMENT,
		                      "name must be 1..100 characters");
	resp->message = rpc_call_alloc(call, n + sizeof("Hello, !"));
	if (resp->message == NULL)
		return RPC_STATUS_RESOURCE_EXHAUSTED;
	sprintf(resp->message, "Hello, %s!", req->name);
	return RPC_STATUS_OK;
}

static const example_greeter_v1_greeter_handlers handlers = {.say_hello = say_hello};

int main(int argc, char **argv)
{
	const char *url = argc > 1 ? argv[1] : "inproc://greeter";
	rpc_server *srv = NULL;
	rpc_channel *ch = NULL;
	rpc_reply *reply = NULL;
	int rc = 1;

	/* Server: register the generated service, listen, start. */
	rpc_status st = rpc_server_create(&srv, NULL);
	if (st == RPC_STATUS_OK)
		st = example_greeter_v1_greeter_register(srv, &handlers, NULL);
	if (st == RPC_STATUS_OK)
		st = rpc_server_listen(srv, url);
	if (st == RPC_STATUS_OK)
		st = rpc_server_start(srv);
	if (st != RPC_STATUS_OK) {
		fprintf(stderr, "greeter: server: %s\n", rpc_status_name(st));
		goto out;
	}

	/* Client: a channel to the same URL and the typed stub. */
	if ((st = rpc_channel_open(&ch, &url, 1, NULL)) != RPC_STATUS_OK) {
		fprintf(stderr, "greeter: channel: %s\n", rpc_status_name(st));
		goto out;
	}
	Example__Greeter__V1__HelloRequest req = EXAMPLE__GREETER__V1__HELLO_REQUEST__INIT;
	req.name = argc > 2 ? argv[2] : "Panthera";
	rpc_call_opts opts = {.timeout_ms = 2000};
	const Example__Greeter__V1__HelloReply *resp;
	st = example_greeter_v1_greeter_say_hello(ch, &req, &opts, &resp, &reply);
	if (st != RPC_STATUS_OK) {
		fprintf(stderr, "greeter: %s: %s\n", rpc_status_name(st), rpc_reply_message(reply));
		goto out;
	}
	printf("%s\n", resp->message);
	rc = 0;
out:
	rpc_reply_free(reply); /* frees resp too */
	rpc_channel_close(ch);
	rpc_server_destroy(srv);
	return rc;
}
