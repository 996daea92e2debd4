/*
 * grpc_echo.cc - the gRPC C++ echo (Debian's libgrpc++ 1.51), with the same
 * 100-byte payload as a `bytes` field of echo.proto's Msg.
 *
 * Built twice: with -DECHO_ROLE_SERVER it is grpc_echo_server, otherwise
 * grpc_echo_client; the command line is echo_bench.h's, URL tcp://HOST:PORT,
 * insecure credentials.
 *
 * Server: the asynchronous completion-queue API with ONE completion-queue
 * thread (the main thread), GRPC_ECHO_SERVER_PENDING calls requested ahead of
 * time; on this machine that beat the callback API and more CQ threads.
 * Client seq: the synchronous stub. Client par: the asynchronous stub and one
 * completion queue, K calls outstanding, all on one channel (one HTTP/2
 * connection), as nng's client has one socket.
 */
#include "echo_bench.h"

#include "echo.grpc.pb.h"

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace
{

using panthera::bench::echo::Echo;
using panthera::bench::echo::Msg;

/* Calls the server requests ahead of time: the 64 calls in flight. */
constexpr int GRPC_ECHO_SERVER_PENDING = 64;

/* tcp://HOST:PORT to gRPC's HOST:PORT; exits 1 on another scheme. */
std::string grpc_echo_target(const char *url)
{
	std::string s(url);

	if (s.compare(0, 6, "tcp://") != 0 || s.size() == 6)
		echo_bench_die("URL must be tcp://HOST:PORT, not %s", url);
	return s.substr(6);
}

std::chrono::system_clock::time_point grpc_echo_deadline(int ms)
{
	return std::chrono::system_clock::now() + std::chrono::milliseconds(ms);
}

/* ---- server ----------------------------------------------------------------- */

struct GrpcEchoServer {
	Echo::AsyncService service;
	std::unique_ptr<grpc::ServerCompletionQueue> cq;
	std::unique_ptr<grpc::Server> server;
	std::mutex mu;         /* orders request_call() before the queue's shutdown */
	bool stopping = false; /* under mu: request no more calls */

	void request_call();
};

/* One server call: requested, then answered; it deletes itself when done. */
class GrpcEchoCall
{
      public:
	explicit GrpcEchoCall(GrpcEchoServer *srv) : srv_(srv), responder_(&ctx_)
	{
		srv_->service.RequestCall(&ctx_, &request_, &responder_, srv_->cq.get(),
		                          srv_->cq.get(), this);
	}

	/* The completion queue delivered this call's tag with `ok`. */
	void proceed(bool ok)
	{
		if (finishing_ || !ok) {
			delete this; /* answered, or the server is shutting down */
			return;
		}
		srv_->request_call(); /* someone must take the next call */
		response_.set_data(request_.data());
		finishing_ = true;
		responder_.Finish(response_, grpc::Status::OK, this);
	}

      private:
	GrpcEchoServer *srv_;
	grpc::ServerContext ctx_;
	Msg request_;
	Msg response_;
	grpc::ServerAsyncResponseWriter<Msg> responder_;
	bool finishing_ = false; /* Finish() was called */
};

void GrpcEchoServer::request_call()
{
	std::lock_guard<std::mutex> lock(mu);

	/* After the queue is shut down, RequestCall() would abort the process. */
	if (!stopping)
		new GrpcEchoCall(this);
}

} // namespace

int grpc_echo_server_main(int argc, char **argv)
{
	std::string target = grpc_echo_target(echo_bench_server_args(argc, argv));
	GrpcEchoServer srv;
	grpc::ServerBuilder builder;
	int port = 0;
	sigset_t stop;

	/* Before gRPC starts its threads, so that they inherit the blocked signals. */
	echo_bench_block_stop_signals(&stop);
	/* A port already taken is an error, not silently shared. */
	builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
	builder.AddListeningPort(target, grpc::InsecureServerCredentials(), &port);
	builder.RegisterService(&srv.service);
	srv.cq = builder.AddCompletionQueue();
	srv.server = builder.BuildAndStart();
	if (srv.server == nullptr || port == 0)
		echo_bench_die("cannot listen on %s", target.c_str());
	for (int i = 0; i < GRPC_ECHO_SERVER_PENDING; i++)
		srv.request_call();

	std::thread stopper([&srv, &stop] {
		echo_bench_wait_stop(&stop);
		{
			std::lock_guard<std::mutex> lock(srv.mu);
			srv.stopping = true;
		}
		srv.server->Shutdown(grpc_echo_deadline(2000)); /* then cancels what is left */
		srv.cq->Shutdown();
	});

	void *tag;
	bool ok;
	while (srv.cq->Next(&tag, &ok))
		static_cast<GrpcEchoCall *>(tag)->proceed(ok);
	stopper.join();
	srv.server.reset();
	echo_bench_server_report();
	return 0;
}

/* ---- client ----------------------------------------------------------------- */

namespace
{

std::shared_ptr<grpc::Channel> grpc_echo_connect(const std::string &target)
{
	std::shared_ptr<grpc::Channel> ch =
	    grpc::CreateChannel(target, grpc::InsecureChannelCredentials());

	if (!ch->WaitForConnected(grpc_echo_deadline(ECHO_BENCH_DIAL_RETRY_MS)))
		echo_bench_die("cannot connect to %s", target.c_str());
	return ch;
}

void grpc_echo_check(const grpc::Status &status, const Msg &reply)
{
	if (!status.ok())
		echo_bench_die("call failed: %d %s", static_cast<int>(status.error_code()),
		               status.error_message().c_str());
	if (!echo_bench_payload_ok(reply.data().data(), reply.data().size()))
		echo_bench_die("reply differs from the request");
}

/* `calls` calls one at a time; records them in `samples` unless it is null. */
void grpc_echo_run_seq(Echo::Stub *stub, const uint8_t *payload, size_t calls,
                       echo_bench_samples *samples)
{
	for (size_t i = 0; i < calls; i++) {
		uint64_t t0 = echo_bench_now_ns();
		grpc::ClientContext ctx;
		Msg request, reply;

		ctx.set_deadline(grpc_echo_deadline(ECHO_BENCH_TIMEOUT_MS));
		request.set_data(payload, ECHO_BENCH_PAYLOAD_LEN);
		grpc::Status status = stub->Call(&ctx, request, &reply);
		grpc_echo_check(status, reply);
		if (samples != nullptr)
			echo_bench_samples_set(samples, i, echo_bench_now_ns() - t0);
	}
}

/* One outstanding asynchronous call; its address is the completion tag. */
struct GrpcEchoSlot {
	std::unique_ptr<grpc::ClientContext> ctx; /* a context serves one call only */
	Msg reply;
	grpc::Status status;
	std::unique_ptr<grpc::ClientAsyncResponseReader<Msg>> rpc;
	uint64_t t0 = 0; /* when the call started */
};

void grpc_echo_start(Echo::Stub *stub, grpc::CompletionQueue *cq, GrpcEchoSlot *slot,
                     const uint8_t *payload)
{
	Msg request;

	slot->t0 = echo_bench_now_ns();
	slot->ctx = std::make_unique<grpc::ClientContext>();
	slot->ctx->set_deadline(grpc_echo_deadline(ECHO_BENCH_TIMEOUT_MS));
	request.set_data(payload, ECHO_BENCH_PAYLOAD_LEN);
	slot->rpc = stub->AsyncCall(slot->ctx.get(), request, cq);
	slot->rpc->Finish(&slot->reply, &slot->status, slot);
}

/* `calls` calls, `slots.size()` outstanding; records them unless `samples` is null. */
void grpc_echo_run_par(Echo::Stub *stub, grpc::CompletionQueue *cq,
                       std::vector<GrpcEchoSlot> &slots, const uint8_t *payload, size_t calls,
                       echo_bench_samples *samples)
{
	size_t issued = 0, done = 0;

	for (size_t i = 0; i < slots.size() && issued < calls; i++, issued++)
		grpc_echo_start(stub, cq, &slots[i], payload);
	while (done < calls) {
		void *tag;
		bool ok;
		grpc::CompletionQueue::NextStatus st =
		    cq->AsyncNext(&tag, &ok, grpc_echo_deadline(ECHO_BENCH_TIMEOUT_MS));

		if (st != grpc::CompletionQueue::GOT_EVENT)
			echo_bench_die("no completion for %d ms", ECHO_BENCH_TIMEOUT_MS);
		if (!ok)
			echo_bench_die("completion queue: call failed");
		GrpcEchoSlot *slot = static_cast<GrpcEchoSlot *>(tag);
		grpc_echo_check(slot->status, slot->reply);
		if (samples != nullptr)
			echo_bench_samples_set(samples, done, echo_bench_now_ns() - slot->t0);
		done++;
		if (issued < calls) {
			issued++;
			grpc_echo_start(stub, cq, slot, payload);
		}
	}
}

} // namespace

int grpc_echo_client_main(int argc, char **argv)
{
	echo_bench_args args;
	echo_bench_samples samples;
	uint8_t payload[ECHO_BENCH_PAYLOAD_LEN];
	uint64_t t0, wall;

	echo_bench_client_args(argc, argv, &args);
	std::string target = grpc_echo_target(args.url);
	echo_bench_payload_fill(payload);
	echo_bench_samples_init(&samples, args.calls);
	std::unique_ptr<Echo::Stub> stub = Echo::NewStub(grpc_echo_connect(target));

	if (args.mode == ECHO_BENCH_SEQ) {
		grpc_echo_run_seq(stub.get(), payload, echo_bench_warmup_calls(args.calls),
		                  nullptr);
		t0 = echo_bench_now_ns();
		grpc_echo_run_seq(stub.get(), payload, args.calls, &samples);
		wall = echo_bench_now_ns() - t0;
	} else {
		grpc::CompletionQueue cq;
		std::vector<GrpcEchoSlot> slots(args.inflight);

		grpc_echo_run_par(stub.get(), &cq, slots, payload,
		                  echo_bench_warmup_calls(args.calls), nullptr);
		t0 = echo_bench_now_ns();
		grpc_echo_run_par(stub.get(), &cq, slots, payload, args.calls, &samples);
		wall = echo_bench_now_ns() - t0;
		cq.Shutdown();
		void *tag;
		bool ok;
		while (cq.Next(&tag, &ok)) {
			/* nothing is outstanding; drain as the API requires */
		}
	}
	echo_bench_report(&samples, wall);
	echo_bench_samples_free(&samples);
	return 0;
}

int main(int argc, char **argv)
{
	try {
#ifdef ECHO_ROLE_SERVER
		return grpc_echo_server_main(argc, argv);
#else
		return grpc_echo_client_main(argc, argv);
#endif
	} catch (const std::exception &e) {
		echo_bench_die("%s", e.what());
	}
}
