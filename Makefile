# Panthera - build, generate, test, install.
#
# Plain GNU make. `make help` lists the targets. Objects go to $(BUILD)
# (build/ or, with SANITIZE=1, build-san/), so sanitized and plain builds
# never mix. gen/ is committed; `make gen` rewrites it from proto/.

SHELL := /bin/bash
.DEFAULT_GOAL := all

CC ?= cc
ifeq ($(origin CC),default)
CC := cc
endif
PROTOC ?= protoc
PREFIX ?= /usr/local
DESTDIR ?=
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
BINDIR ?= $(PREFIX)/bin
VERSION := 0.1.0
# panthera.pc names its folders relative to ${prefix} when they lie under it,
# so pkg-config --define-prefix and relocated installs work.
PC_LIBDIR = $(patsubst $(PREFIX)%,$${prefix}%,$(LIBDIR))
PC_INCLUDEDIR = $(patsubst $(PREFIX)%,$${prefix}%,$(INCLUDEDIR))

SANITIZE ?= 0
ifeq ($(SANITIZE),1)
BUILD ?= build-san
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
OPT := -O1
else
BUILD ?= build
SAN_FLAGS :=
OPT := -O2
endif

WARN := -Wall -Wextra -Werror
CPPFLAGS_ALL := -D_POSIX_C_SOURCE=200809L -Irpc/include -Igen $(CPPFLAGS)
CFLAGS_ALL := -std=c11 $(OPT) -g -fPIC $(WARN) $(SAN_FLAGS) $(CFLAGS)
LDFLAGS_ALL := $(SAN_FLAGS) $(LDFLAGS)
LIBS := -lnng -lprotobuf-c -lpthread

# ---- protos -----------------------------------------------------------------
# Our protos, the googleapis-compatible annotations, protoc's plugin protocol,
# and the well-known types they import (from Debian's libprotobuf-dev).
PROTO_INC := -Iproto -I/usr/include
PLATFORM_PROTOS := $(sort $(shell find proto/panthera -name '*.proto'))
GOOGLE_PROTOS := google/api/http.proto google/api/annotations.proto \
                 google/protobuf/compiler/plugin.proto google/rpc/error_details.proto \
                 grpc/health/v1/health.proto
WKT_PROTOS := $(addprefix google/protobuf/,descriptor.proto timestamp.proto \
                field_mask.proto wrappers.proto empty.proto duration.proto struct.proto any.proto)
GEN_INPUTS := $(patsubst proto/%,%,$(PLATFORM_PROTOS)) $(GOOGLE_PROTOS) $(WKT_PROTOS)
PANTHERA_OPT := name=panthera,title=Panthera API,version=1.0.0,server=http://127.0.0.1:8080

# ---- the plugin ---------------------------------------------------------------
# Built from protoc-c output generated into $(BUILD)/codegen/pb at build time,
# so it never depends on the gen/ it writes.
PLUGIN := $(BUILD)/bin/protoc-gen-panthera
PLUGIN_SRCS := $(wildcard codegen/*.c)
PLUGIN_PB := google/protobuf/descriptor google/protobuf/compiler/plugin google/api/http panthera/api/options
PLUGIN_PB_C := $(addprefix $(BUILD)/codegen/pb/,$(addsuffix .pb-c.c,$(PLUGIN_PB)))
PLUGIN_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(PLUGIN_SRCS)) $(PLUGIN_PB_C:.c=.o)

$(PLUGIN_PB_C) &: proto/google/protobuf/compiler/plugin.proto proto/google/api/http.proto proto/panthera/api/options.proto
	@mkdir -p $(BUILD)/codegen/pb
	$(PROTOC) $(PROTO_INC) --c_out=$(BUILD)/codegen/pb $(addsuffix .proto,$(PLUGIN_PB))

$(BUILD)/codegen/pb/%.o: $(BUILD)/codegen/pb/%.c
	$(CC) $(CPPFLAGS_ALL) -I$(BUILD)/codegen/pb $(CFLAGS_ALL) -c $< -o $@

$(BUILD)/obj/codegen/%.o: codegen/%.c codegen/pgen.h $(PLUGIN_PB_C)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS_ALL) -I$(BUILD)/codegen/pb -Icodegen $(CFLAGS_ALL) -c $< -o $@

$(PLUGIN): $(PLUGIN_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LIBS)

# ---- the library: runtime + generated code ----------------------------------
RPC_SRCS := $(wildcard rpc/src/*.c)
GEN_SRCS := $(sort $(shell find gen -name '*.c' 2>/dev/null))
LIB_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(RPC_SRCS) $(GEN_SRCS))
LIB_A := $(BUILD)/lib/libpanthera.a
LIB_SO := $(BUILD)/lib/libpanthera.so

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS_ALL) $(CFLAGS_ALL) -MMD -MP -c $< -o $@

$(LIB_A): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

# The services' common layer: PostgreSQL, logging, ids. A library of its
# own, so libpanthera (what SDK users link) needs no libpq or OpenSSL.
PG_INC := $(shell pg_config --includedir 2>/dev/null || echo /usr/include/postgresql)
SVC_DIRS := $(sort $(filter-out services/common/,$(dir $(wildcard services/*/*.c))))
SVC_CPPFLAGS := -Iservices/common/include $(addprefix -I,$(SVC_DIRS)) -I$(PG_INC)
SVC_SRCS := $(wildcard services/common/src/*.c) $(wildcard services/*/*.c)
SVC_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(SVC_SRCS))
SVC_LIB := $(BUILD)/lib/libpanthera_services.a
SVC_LIBS := -lpq -lssl -lcrypto

$(BUILD)/obj/services/%.o: services/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS_ALL) $(SVC_CPPFLAGS) $(CFLAGS_ALL) -MMD -MP -c $< -o $@

$(SVC_LIB): $(SVC_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

$(LIB_SO): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -shared -Wl,-soname,libpanthera.so.0 -o $@ $^ $(LIBS)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# The REST gateway's library (gateway-rest/): routing, JSON transcoding,
# token checks, the HTTP server on h2o. Links the services' library only for
# what it shares with them (tokens, logging), never for a database.
GW_SRCS := $(wildcard gateway-rest/*.c)
GW_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(GW_SRCS))
GW_LIB := $(BUILD)/lib/libpanthera_gateway.a
GW_CPPFLAGS := -Igateway-rest -Irpc/src $(SVC_CPPFLAGS)
GW_LIBS := -lh2o-evloop -ljansson -lssl -lcrypto

$(BUILD)/obj/gateway-rest/%.o: gateway-rest/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS_ALL) $(GW_CPPFLAGS) $(CFLAGS_ALL) -MMD -MP -c $< -o $@

$(GW_LIB): $(GW_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

# The gateway of a process (cmd/gateway_proc.c) and the RPC transport
# settings (cmd/rpc_cfg.c), shared by pantherad and panthera-gateway.
GW_PROC_OBJ := $(BUILD)/obj/cmd/gateway_proc.o $(BUILD)/obj/cmd/rpc_cfg.o
$(BUILD)/obj/cmd/%.o: cmd/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS_ALL) $(GW_CPPFLAGS) $(CFLAGS_ALL) -MMD -MP -c $< -o $@

# The daemon: every service in one process.
PANTHERAD := $(BUILD)/bin/pantherad
$(PANTHERAD): cmd/pantherad.c $(GW_PROC_OBJ) $(GW_LIB) $(SVC_LIB) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS_ALL) $(GW_CPPFLAGS) $(CFLAGS_ALL) $< $(GW_PROC_OBJ) -o $@ $(LDFLAGS_ALL) \
	  $(GW_LIB) $(SVC_LIB) $(LIB_A) $(GW_LIBS) $(SVC_LIBS) $(LIBS)

# The gateway alone, dialing the services over their URLs. An explicit
# rule: make prefers it to the pattern of the service binaries below.
GATEWAY_BIN := $(BUILD)/bin/panthera-gateway
$(GATEWAY_BIN): cmd/panthera-gateway.c $(GW_PROC_OBJ) $(GW_LIB) $(SVC_LIB) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS_ALL) $(GW_CPPFLAGS) $(CFLAGS_ALL) $< $(GW_PROC_OBJ) -o $@ $(LDFLAGS_ALL) \
	  $(GW_LIB) $(SVC_LIB) $(LIB_A) $(GW_LIBS) $(SVC_LIBS) $(LIBS)

# One binary per service: the same main, serving its service by default.
SERVICE_BINS := $(addprefix $(BUILD)/bin/panthera-,auth catalog inventory orders payments cart analytics reviews notifications)
$(BUILD)/bin/panthera-%: cmd/pantherad.c $(GW_PROC_OBJ) $(GW_LIB) $(SVC_LIB) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS_ALL) $(GW_CPPFLAGS) '-DPANTHERA_DEFAULT_SERVICES="$*"' $(CFLAGS_ALL) $< \
	  $(GW_PROC_OBJ) -o $@ $(LDFLAGS_ALL) $(GW_LIB) $(SVC_LIB) $(LIB_A) $(GW_LIBS) $(SVC_LIBS) $(LIBS)

# The `panthera` CLI (client-sdk/cli/, docs/cli.md): reflection for list and
# describe, the gateway's JSON transcoder for call. It knows the message
# types of every service in gen/, listed here from the generated headers.
# gw_json takes base64 and UTF-8 checks from the services' common library.
CLI_BIN := $(BUILD)/bin/panthera
CLI_SRCS := $(wildcard client-sdk/cli/*.c)
CLI_KNOWN := $(BUILD)/cli/known_services.c
GEN_SVC_HEADERS := $(sort $(shell find gen -name '*.panthera.h' 2>/dev/null))
$(CLI_KNOWN): $(GEN_SVC_HEADERS)
	@mkdir -p $(dir $@)
	{ echo '/* Generated by the Makefile from gen/: the services the CLI knows. */'; \
	  echo '#include "cli.h"'; \
	  for h in $(patsubst gen/%,%,$^); do echo "#include \"$$h\""; done; \
	  echo 'const rpc_service_desc *const cli_known_services[] = {'; \
	  sed -n 's/^extern const rpc_service_desc \([a-z0-9_]*\);$$/\t\&\1,/p' $^; \
	  echo '};'; \
	  echo 'const size_t cli_n_known_services = sizeof(cli_known_services) / sizeof(cli_known_services[0]);'; \
	} > $@.tmp && mv $@.tmp $@

$(CLI_BIN): $(CLI_SRCS) client-sdk/cli/cli.h $(CLI_KNOWN) $(GW_LIB) $(SVC_LIB) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS_ALL) -Igateway-rest -Iclient-sdk/cli $(CFLAGS_ALL) $(CLI_SRCS) $(CLI_KNOWN) \
	  -o $@ $(LDFLAGS_ALL) $(GW_LIB) $(SVC_LIB) $(LIB_A) $(LIBS)

.PHONY: all
all: $(PLUGIN) $(LIB_A) $(LIB_SO) $(SVC_LIB) $(GW_LIB) $(PANTHERAD) $(GATEWAY_BIN) $(SERVICE_BINS) $(CLI_BIN) ## build the plugin, libpanthera and the services' common library

# ---- gen ----------------------------------------------------------------------
# Generate into a fresh folder, then swap it in: a proto that was removed
# leaves nothing behind, and a failed run leaves gen/ as it was.
.PHONY: gen
gen: $(PLUGIN) ## regenerate gen/ from proto/ (protoc-c + protoc-gen-panthera)
	rm -rf $(BUILD)/gen.new && mkdir -p $(BUILD)/gen.new
	$(PROTOC) $(PROTO_INC) --plugin=protoc-gen-panthera=$(PLUGIN) \
	  --c_out=$(BUILD)/gen.new --panthera_out=$(BUILD)/gen.new \
	  '--panthera_opt=$(PANTHERA_OPT)' $(GEN_INPUTS)
	rm -rf gen && mv $(BUILD)/gen.new gen

# ---- tests --------------------------------------------------------------------
TEST_LIBS := -lcmocka $(LIBS)
include tests/tests.mk

# ---- other targets ----------------------------------------------------------
.PHONY: deps
deps: ## install the Debian 12 packages and npm tools the build needs (as root)
	tools/deps.sh

.PHONY: run
run: all ## run what the platform serves so far (see README)
	tools/run.sh $(BUILD)

# The platform as a local cluster of processes over mutual TLS, in the
# background (deploy/local/up.sh: two replicas of catalog and orders).
.PHONY: cluster cluster-down
cluster: all ## start the local cluster (deploy/local/up.sh; docs/operations.md)
	BUILD=$(BUILD) deploy/local/up.sh
cluster-down: ## stop the local cluster
	deploy/local/down.sh

.PHONY: bench bench-rpc bench-orders bench-gateway
bench: bench-rpc bench-orders bench-gateway ## every benchmark of bench/; each prints ratios against baselines of the same run

bench-rpc: all ## the RPC benchmark alone (bench/rpc: vs bare nng, raw TCP, gRPC C++; under 3 minutes)
	$(MAKE) -C bench/rpc bench

bench-orders: all ## orders placed and settled through RPC vs pgbench on the same SQL (bench/orders; under 2 minutes)
	$(MAKE) -C bench/orders bench

bench-gateway: $(PANTHERAD) ## the REST gateway vs nginx and pgbench, orders over HTTP, RSS (bench/gateway; needs tools/deps.sh --bench; under 2 minutes)
	BUILD=$(abspath $(BUILD)) $(MAKE) -C bench/gateway bench

FUZZ_SECONDS ?= 60
.PHONY: fuzz
fuzz: ## run each libFuzzer target for FUZZ_SECONDS (clang)
	tools/fuzz.sh $(FUZZ_SECONDS)

FORMAT_SRCS = $(shell git ls-files '*.c' '*.h' | grep -v -e '^gen/' -e '^tests/codegen/golden/')
.PHONY: format format-check
format: ## apply .clang-format to every C file but gen/
	clang-format -i $(FORMAT_SRCS)
format-check:
	clang-format --dry-run -Werror $(FORMAT_SRCS)

.PHONY: install
install: all ## install headers, libraries, panthera.pc, binaries, OpenAPI and migrations under $(DESTDIR)$(PREFIX)
	install -d $(DESTDIR)$(INCLUDEDIR)/panthera $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(BINDIR)
	install -m 644 rpc/include/panthera/*.h $(DESTDIR)$(INCLUDEDIR)/panthera/
	cd gen && find . -name '*.h' -exec install -D -m 644 {} $(DESTDIR)$(INCLUDEDIR)/panthera/gen/{} \;
	install -m 644 $(LIB_A) $(DESTDIR)$(LIBDIR)/libpanthera.a
	install -m 755 $(LIB_SO) $(DESTDIR)$(LIBDIR)/libpanthera.so.$(VERSION)
	ln -sf libpanthera.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libpanthera.so.0
	ln -sf libpanthera.so.0 $(DESTDIR)$(LIBDIR)/libpanthera.so
	install -m 755 $(PLUGIN) $(DESTDIR)$(BINDIR)/protoc-gen-panthera
	install -m 755 $(PANTHERAD) $(GATEWAY_BIN) $(SERVICE_BINS) $(CLI_BIN) $(DESTDIR)$(BINDIR)/
	install -d $(DESTDIR)$(PREFIX)/share/panthera/proto
	cd proto && find . -name '*.proto' ! -path './google/protobuf/*' -exec install -D -m 644 {} $(DESTDIR)$(PREFIX)/share/panthera/proto/{} \;
	install -D -m 644 gen/panthera.openapi.json $(DESTDIR)$(PREFIX)/share/panthera/panthera.openapi.json
	for f in services/*/migrations/*.sql; do install -D -m 644 $$f $(DESTDIR)$(PREFIX)/share/panthera/$$f; done
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(PC_LIBDIR)|g' -e 's|@INCLUDEDIR@|$(PC_INCLUDEDIR)|g' \
	    -e 's|@VERSION@|$(VERSION)|g' panthera.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/panthera.pc

.PHONY: sdk-ts
sdk-ts: ## the TypeScript client of the REST API, an npm package in $(BUILD)/sdk-ts (openapi-typescript + openapi-fetch; needs make deps)
	VERSION=$(VERSION) tools/sdk-ts.sh $(BUILD)/sdk-ts

.PHONY: docs
docs: $(PANTHERAD) ## regenerate the settings table of docs/operations.md from the code
	{ sed '/<!-- settings:begin -->/q' docs/operations.md; $(PANTHERAD) --help-markdown; \
	  sed -n '/<!-- settings:end -->/,$$p' docs/operations.md; } > docs/operations.md.new
	mv docs/operations.md.new docs/operations.md

.PHONY: clean
clean: ## remove build outputs (never gen/)
	rm -rf build build-san build-clang

.PHONY: help
help:
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -e 's/:.*## /\t/' | sort
