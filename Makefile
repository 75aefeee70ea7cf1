# egw: one Makefile on pkg-config, out-of-tree build in build/.
#   make            build everything           make test    the whole suite
#   make run/demo   demo topology              make SAN=1   ASan+UBSan build in build/san
#   make fuzz       libFuzzer targets           make fmt     clang-format the tree

SHELL := /bin/bash
B ?= build
ifeq ($(SAN),1)
B := build/san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
endif

CXX ?= g++
PKGS := libdpdk jsoncpp openssl libpcap
ARCH := $(if $(filter 1,$(NATIVE)),-march=native,)
DPDK_CFLAGS := $(patsubst -I%,-isystem %,$(shell pkg-config --cflags libdpdk 2>/dev/null))
CXXFLAGS := -std=c++20 -O2 -g -Wall -Wextra -Wno-missing-field-initializers -I. \
            $(DPDK_CFLAGS) $(shell pkg-config --cflags jsoncpp openssl libpcap cpp-httplib libhs 2>/dev/null) \
            $(ARCH) $(SANFLAGS) $(EXTRA_CXXFLAGS)
LDFLAGS := $(SANFLAGS)
DPDK_LIBS := $(shell pkg-config --libs libdpdk 2>/dev/null)
JSON_LIBS := $(shell pkg-config --libs jsoncpp 2>/dev/null)
SSL_LIBS := $(shell pkg-config --libs openssl 2>/dev/null)
PCAP_LIBS := $(shell pkg-config --libs libpcap 2>/dev/null)
HTTP_LIBS := $(shell pkg-config --libs cpp-httplib 2>/dev/null)
# Hyperscan: the compiler (rules validation, mgmt) links all of it; egw-dataplane only
# deserializes and scans, so it links the runtime library alone.
HS_LIBS := $(shell pkg-config --libs libhs 2>/dev/null)
HS_RUNTIME_LIBS := $(patsubst -lhs,-lhs_runtime,$(HS_LIBS))

# Sources: every .cc of a component except its program entry points.
RULES_SRCS := $(wildcard rules/*.cc)
DP_MAINS := dataplane/main.cc dataplane/replay/main.cc
DP_SRCS := $(filter-out $(DP_MAINS),$(wildcard dataplane/*.cc dataplane/l7/*.cc dataplane/replay/*.cc))
MGMT_MAINS := mgmt/egwctl.cc mgmt/egw_mgmt.cc
MGMT_SRCS := $(filter-out $(MGMT_MAINS),$(wildcard mgmt/*.cc))
UNIT_SRCS ?= $(shell find tests -name '*_test.cc' | sort)

obj = $(patsubst %.cc,$(B)/obj/%.o,$(1))
LIB_RULES := $(B)/lib/libegw_rules.a
LIB_DP := $(B)/lib/libegw_dp.a
LIB_MGMT := $(B)/lib/libegw_mgmt.a
BINS := $(B)/egw-dataplane $(B)/egw-replay $(B)/egwctl $(B)/egw-mgmt
PERF_BINS := $(B)/perf/name_bench $(B)/perf/worker_bench $(B)/perf/flow_log_bench  # make perf; smoke-run by make test

.PHONY: all deps test unit unit-one packet e2e run demo fuzz fuzz-run fmt clean perf print-flags
all: $(BINS) $(B)/tests/unit_tests

deps:
	@./.ci/deps.sh

$(B)/obj/%.o: %.cc
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -MMD -MP -c $< -o $@

$(LIB_RULES): $(call obj,$(RULES_SRCS))
$(LIB_DP): $(call obj,$(DP_SRCS))
$(LIB_MGMT): $(call obj,$(MGMT_SRCS))
$(B)/lib/%.a:
	@mkdir -p $(dir $@)
	@rm -f $@
	ar rcs $@ $^

# The telemetry commands read the stats segment with egw-mgmt's reader (no DPDK in it).
$(B)/egw-dataplane: $(call obj,dataplane/main.cc mgmt/stats_reader.cc) $(LIB_DP)
	$(CXX) $(LDFLAGS) $^ -o $@ $(DPDK_LIBS) $(HS_RUNTIME_LIBS) -lpthread
$(B)/egw-replay: $(call obj,dataplane/replay/main.cc) $(LIB_MGMT) $(LIB_RULES) $(LIB_DP)
	$(CXX) $(LDFLAGS) $^ -o $@ $(DPDK_LIBS) $(JSON_LIBS) $(SSL_LIBS) $(PCAP_LIBS) $(HS_LIBS) -lpthread
# egwctl takes only the compiler's DPDK-free pieces of libegw_dp (the domain table).
$(B)/egwctl: $(call obj,mgmt/egwctl.cc) $(LIB_MGMT) $(LIB_RULES) $(LIB_DP)
	$(CXX) $(LDFLAGS) $^ -o $@ $(HTTP_LIBS) $(JSON_LIBS) $(SSL_LIBS) $(HS_LIBS) -lpthread
$(B)/egw-mgmt: $(call obj,mgmt/egw_mgmt.cc) $(LIB_MGMT) $(LIB_RULES) $(LIB_DP)
	$(CXX) $(LDFLAGS) $^ -o $@ $(HTTP_LIBS) $(JSON_LIBS) $(SSL_LIBS) $(HS_LIBS) -lpthread

TEST_LIBS = $(LIB_MGMT) $(LIB_RULES) $(LIB_DP)
TEST_LDLIBS = $(DPDK_LIBS) $(HTTP_LIBS) $(JSON_LIBS) $(SSL_LIBS) $(PCAP_LIBS) $(HS_LIBS) -lgtest \
              -lpthread
$(B)/tests/unit_tests: $(call obj,$(UNIT_SRCS) tests/test_main.cc) $(TEST_LIBS)
	@mkdir -p $(dir $@)
	$(CXX) $(LDFLAGS) $^ -o $@ $(TEST_LDLIBS)

# One test file alone, while working on it: make unit-one T=tests/dataplane/parse_test.cc
unit-one: $(call obj,$(T) tests/test_main.cc) $(TEST_LIBS)
	@mkdir -p $(B)/tests/one
	$(CXX) $(LDFLAGS) $^ -o $(B)/tests/one/$(basename $(notdir $(T))) $(TEST_LDLIBS)
	$(B)/tests/one/$(basename $(notdir $(T)))

unit: $(B)/tests/unit_tests
	$(B)/tests/unit_tests

packet: $(BINS)
	/usr/bin/python3 tests/packet/run_packet_tests.py --build $(B)

e2e: $(BINS)
	bash tests/e2e/run.sh $(B)

# The whole suite: unit, packet (pcap replay) and end-to-end; one plain summary line last.
test: deps all $(PERF_BINS)
	@bash tests/run_all.sh $(B)

run: deps all
	@bash tests/e2e/topology.sh run $(B)

demo: deps all
	@bash tests/e2e/topology.sh demo $(B)

# The name-condition benchmark needs the compiler and RuntimePolicy (EAL, Hyperscan).
$(B)/perf/name_bench: $(call obj,perf/name_bench.cc) $(TEST_LIBS)
	@mkdir -p $(dir $@)
	$(CXX) $(LDFLAGS) $^ -o $@ $(DPDK_LIBS) $(JSON_LIBS) $(SSL_LIBS) $(HS_LIBS) -lpthread

# The worker pipeline in process (no PMD): the compiler, RuntimePolicy and the worker.
$(B)/perf/worker_bench: $(call obj,perf/worker_bench.cc) $(TEST_LIBS)
	@mkdir -p $(dir $@)
	$(CXX) $(LDFLAGS) $^ -o $@ $(DPDK_LIBS) $(JSON_LIBS) $(SSL_LIBS) $(HS_LIBS) -lpthread

# The flow-record path: a worker's records through a shared-memory ring to egw-mgmt's drain.
$(B)/perf/flow_log_bench: $(call obj,perf/flow_log_bench.cc) $(TEST_LIBS)
	@mkdir -p $(dir $@)
	$(CXX) $(LDFLAGS) $^ -o $@ $(DPDK_LIBS) $(JSON_LIBS) $(SSL_LIBS) $(HS_LIBS) -lpthread

# The same with per-stage clocks (dataplane/stage_clock.h): every object differs, so the
# whole variant builds apart, in $(B)/stages.
.PHONY: perf-stages
perf-stages:
	$(MAKE) B=$(B)/stages EXTRA_CXXFLAGS=-DEGW_STAGE_CLOCKS $(B)/stages/perf/worker_bench

perf: deps all $(PERF_BINS) perf-stages
	@bash perf/run.sh $(B)

# libFuzzer targets (clang): pure parsers, no EAL.
FUZZ_CXX := clang++
FUZZ_FLAGS := -std=c++20 -O1 -g -I. $(DPDK_CFLAGS) $(shell pkg-config --cflags jsoncpp libhs 2>/dev/null) \
              -fsanitize=fuzzer,address,undefined
FUZZ_PARSE_SRCS := tests/fuzz/fuzz_parse.cc dataplane/parse.cc
FUZZ_POLICY_SRCS := tests/fuzz/fuzz_policy.cc mgmt/compiler.cc $(RULES_SRCS) \
                    dataplane/l7/domain_table.cc dataplane/l7/name.cc
$(B)/fuzz/fuzz_parse: $(FUZZ_PARSE_SRCS) $(wildcard dataplane/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CXX) $(FUZZ_FLAGS) $(FUZZ_PARSE_SRCS) -o $@
$(B)/fuzz/fuzz_policy: $(FUZZ_POLICY_SRCS) $(wildcard rules/*.h mgmt/*.h dataplane/l7/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CXX) $(FUZZ_FLAGS) $(FUZZ_POLICY_SRCS) -o $@ $(JSON_LIBS) $(SSL_LIBS) $(HS_LIBS)
FUZZ_BLOB_SRCS := tests/fuzz/fuzz_blob.cc dataplane/policy.cc dataplane/l7/domain_table.cc \
                  dataplane/l7/name.cc
$(B)/fuzz/fuzz_blob: $(FUZZ_BLOB_SRCS) $(wildcard dataplane/*.h dataplane/l7/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CXX) $(FUZZ_FLAGS) $(FUZZ_BLOB_SRCS) -o $@ $(DPDK_LIBS) $(HS_RUNTIME_LIBS)
# L7 parsers: one target per parser, each over the pure parsers of dataplane/l7/.
L7_SRCS := $(wildcard dataplane/l7/*.cc)
L7_FUZZERS := $(patsubst tests/fuzz/%.cc,$(B)/fuzz/%,$(wildcard tests/fuzz/fuzz_l7_*.cc))
$(B)/fuzz/fuzz_l7_%: tests/fuzz/fuzz_l7_%.cc $(L7_SRCS) $(wildcard dataplane/l7/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CXX) $(FUZZ_FLAGS) $< $(L7_SRCS) -o $@
fuzz: $(B)/fuzz/fuzz_parse $(B)/fuzz/fuzz_policy $(B)/fuzz/fuzz_blob $(L7_FUZZERS)
FUZZ_SECONDS ?= 60
fuzz-run: fuzz
	bash tests/fuzz/run.sh $(B) $(FUZZ_SECONDS)

fmt:
	clang-format -i $$(git ls-files '*.cc' '*.h')

print-flags:
	@echo CXXFLAGS=$(CXXFLAGS)
	@echo LIBS=$(TEST_LDLIBS)

clean:
	rm -rf build

-include $(shell find $(B)/obj -name '*.d' 2>/dev/null)
