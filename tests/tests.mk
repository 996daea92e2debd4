# tests/tests.mk - the test suite, included by the Makefile.
#
# `make test` builds everything, then tests/run.sh runs every test program
# and script and prints one closing line "N passed, N failed".

TEST_BIN := $(BUILD)/tests

# Unit tests of rpc/ that need nothing but the library.
$(TEST_BIN)/test_rpc_status: tests/unit/test_rpc_status.c $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS_ALL) $(CFLAGS_ALL) $< -o $@ $(LDFLAGS_ALL) $(LIB_A) $(TEST_LIBS)

# The generator's own tests: golden files, error cases, and the generated
# test stubs linked with a recording test double of the channel and server.
CODEGEN_TEST_PROTOS := $(sort $(shell find tests/codegen/proto -name '*.proto' 2>/dev/null))
CODEGEN_TEST_OUT := $(BUILD)/codegen-test
CODEGEN_TEST_WKT := $(addprefix google/protobuf/,timestamp.proto duration.proto field_mask.proto \
                      wrappers.proto empty.proto struct.proto)

$(CODEGEN_TEST_OUT)/.stamp: $(PLUGIN) $(CODEGEN_TEST_PROTOS) $(wildcard proto/google/api/*.proto proto/panthera/api/*.proto)
	rm -rf $(CODEGEN_TEST_OUT) && mkdir -p $(CODEGEN_TEST_OUT)
	$(PROTOC) -Itests/codegen/proto $(PROTO_INC) --plugin=protoc-gen-panthera=$(PLUGIN) \
	  --c_out=$(CODEGEN_TEST_OUT) --panthera_out=$(CODEGEN_TEST_OUT) --panthera_opt=name=testapi \
	  $(patsubst tests/codegen/proto/%,%,$(CODEGEN_TEST_PROTOS)) $(CODEGEN_TEST_WKT) \
	  google/api/http.proto google/api/annotations.proto panthera/api/options.proto google/protobuf/descriptor.proto
	touch $@

$(TEST_BIN)/test_codegen: tests/codegen/test_codegen.c $(CODEGEN_TEST_OUT)/.stamp $(wildcard rpc/src/*.c)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS_ALL) -I$(CODEGEN_TEST_OUT) $(CFLAGS_ALL) \
	  -DPLUGIN_PATH='"$(abspath $(PLUGIN))"' -DSRC_DIR='"$(CURDIR)"' -DGEN_OUT='"$(abspath $(CODEGEN_TEST_OUT))"' \
	  $< $$(find $(CODEGEN_TEST_OUT) -name '*.c') rpc/src/rpc_status.c rpc/src/rpc_desc.c \
	  -o $@ $(LDFLAGS_ALL) $(TEST_LIBS)

# LD_PRELOAD shim for the plugin's allocation-failure test.
$(TEST_BIN)/failalloc.so: tests/codegen/failalloc.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -O1 -g -fPIC -shared $(WARN) $< -o $@

# The runtime's tests: a test service generated from tests/rpc/echo.proto.
RPC_TEST_OUT := $(BUILD)/rpc-test
$(RPC_TEST_OUT)/.stamp: $(PLUGIN) tests/rpc/echo.proto
	rm -rf $(RPC_TEST_OUT) && mkdir -p $(RPC_TEST_OUT)
	$(PROTOC) -Itests/rpc $(PROTO_INC) --plugin=protoc-gen-panthera=$(PLUGIN) \
	  --c_out=$(RPC_TEST_OUT) --panthera_out=$(RPC_TEST_OUT) --panthera_opt=set=false echo.proto
	touch $@

$(TEST_BIN)/test_rpc: tests/rpc/test_rpc.c $(RPC_TEST_OUT)/.stamp $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS_ALL) -I$(RPC_TEST_OUT) -Irpc/src $(CFLAGS_ALL) $< $(RPC_TEST_OUT)/echo.pb-c.c \
	  $(RPC_TEST_OUT)/echo.panthera.c -o $@ $(LDFLAGS_ALL) $(LIB_A) $(TEST_LIBS)

$(TEST_BIN)/test_wire: tests/unit/test_wire.c $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS_ALL) -Irpc/src $(CFLAGS_ALL) $< -o $@ $(LDFLAGS_ALL) $(LIB_A) $(TEST_LIBS)

# The services' common layer, on a PostgreSQL cluster the test starts.
# Every tests/services/test_*.c: the services' library, the PostgreSQL
# harness and the tests' shared set-up (tests/support/*.c), cmocka.
TEST_SUPPORT := $(wildcard tests/support/*.c) $(wildcard tests/support/*.h)
SVC_TESTS := $(patsubst tests/services/%.c,$(TEST_BIN)/%,$(wildcard tests/services/test_*.c))
$(TEST_BIN)/test_%: tests/services/test_%.c $(TEST_SUPPORT) $(SVC_LIB) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS_ALL) $(SVC_CPPFLAGS) $(CFLAGS_ALL) -DSRC_DIR='"$(CURDIR)"' \
	  $< $(filter %.c,$(TEST_SUPPORT)) -o $@ $(LDFLAGS_ALL) $(SVC_LIB) $(LIB_A) $(SVC_LIBS) $(TEST_LIBS)

# The gateway's unit tests: tests/gateway/test_*.c against the gateway's
# library (and the services' one, for what a test needs of them, such as
# signing tokens with auth's keys).
GW_TESTS := $(patsubst tests/gateway/%.c,$(TEST_BIN)/%,$(wildcard tests/gateway/test_*.c))
$(TEST_BIN)/test_%: tests/gateway/test_%.c $(TEST_SUPPORT) $(GW_LIB) $(SVC_LIB) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS_ALL) $(GW_CPPFLAGS) $(CFLAGS_ALL) -DSRC_DIR='"$(CURDIR)"' \
	  $< $(filter %.c,$(TEST_SUPPORT)) -o $@ $(LDFLAGS_ALL) $(GW_LIB) $(SVC_LIB) $(LIB_A) $(GW_LIBS) $(SVC_LIBS) $(TEST_LIBS)

$(TEST_BIN)/rpc_probe: tests/services/rpc_probe.c $(SVC_LIB) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS_ALL) $(SVC_CPPFLAGS) $(CFLAGS_ALL) $< -o $@ $(LDFLAGS_ALL) $(SVC_LIB) $(LIB_A) \
	  $(SVC_LIBS) $(LIBS)

TESTS := $(TEST_BIN)/test_rpc_status $(TEST_BIN)/test_codegen $(TEST_BIN)/test_wire \
         $(TEST_BIN)/test_rpc $(SVC_TESTS) $(GW_TESTS)
TEST_HELPERS := $(TEST_BIN)/failalloc.so $(TEST_BIN)/rpc_probe

# gen/ compiles warning-free under both compilers, on its own and through
# every generated header included alone.
.PHONY: check-gen-compiles
check-gen-compiles:
	tools/check-gen-compiles.sh

.PHONY: test
test: all $(TESTS) $(TEST_HELPERS) ## build and run every test (the README's test command)
	BUILD=$(BUILD) SANITIZE=$(SANITIZE) CC=$(CC) tests/run.sh $(TESTS)

.PHONY: golden
golden: $(CODEGEN_TEST_OUT)/.stamp ## accept the generator's current output as the golden files
	find tests/codegen/golden -type f ! -name .clang-format -delete
	cd $(CODEGEN_TEST_OUT) && find . -name '*.panthera.[ch]' -o -name 'testapi*' | grep -v stamp | \
	  while read -r f; do install -D -m 644 "$$f" "$(CURDIR)/tests/codegen/golden/$$f"; done
