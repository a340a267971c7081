# Build for the annotation pipeline: one static library (common/ plus the
# protobuf-c code generated from proto/), one binary per service and tool in
# bin/, tests under build/tests/.  `make help` lists the targets.

CC       ?= cc
PROTOC_C ?= protoc-c
PKGS     := rdkafka hiredis libpq libprotobuf-c libmicrohttpd jansson uuid libsodium libhs libutf8proc
TEST_PKGS := cmocka

BUILD := build
GEN   := $(BUILD)/gen
OBJ   := $(BUILD)/obj
BIN   := bin

CFLAGS   ?= -O2 -g
CFLAGS   += -std=c17 -Wall -Wextra -Werror -D_GNU_SOURCE -MMD -MP
CPPFLAGS += -Icommon -I$(GEN) $(shell pkg-config --cflags $(PKGS))
LDLIBS   += $(shell pkg-config --libs $(PKGS)) -lpthread -lm

# V=1 shows the full commands.
ifeq ($(V),1)
Q :=
else
Q := @
endif

# SANITIZE=address,undefined builds everything with those sanitizers.
ifneq ($(SANITIZE),)
CFLAGS  += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer
LDFLAGS += -fsanitize=$(SANITIZE)
endif

PROTOS     := $(wildcard proto/annot/v1/*.proto)
PROTO_SRCS := $(patsubst proto/%.proto,$(GEN)/%.pb-c.c,$(PROTOS))
PROTO_HDRS := $(PROTO_SRCS:.c=.h)
COMMON_SRCS := $(wildcard common/*.c)
LIB        := $(BUILD)/libannot.a
LIB_OBJS   := $(patsubst %.c,$(OBJ)/%.o,$(COMMON_SRCS)) $(patsubst $(BUILD)/%.c,$(OBJ)/%.o,$(PROTO_SRCS))

# Every directory under services/ and tools/ with a main.c is one binary named
# after the directory; its other .c files are linked into it.
PROG_DIRS := $(patsubst %/main.c,%,$(wildcard services/*/main.c tools/*/main.c))
PROGS     := $(addprefix $(BIN)/,$(notdir $(PROG_DIRS)))

UNIT_SRCS  := $(wildcard tests/unit/test_*.c)
UNIT_TESTS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))
INTEG_SRCS := $(wildcard tests/integration/*.c)
INTEG_BINS := $(patsubst tests/integration/%.c,$(BUILD)/tests/%,$(INTEG_SRCS))
BENCH_SRCS := $(wildcard tests/bench/*.c)
BENCH_BINS := $(patsubst tests/bench/%.c,$(BUILD)/bench/%,$(BENCH_SRCS))
# Every fuzz target is also built with $(CC) around replay_main.c, to replay
# its seed corpus in the unit tests (tests/fuzz/fuzz.h).
FUZZ_SRCS    := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_NAMES   := $(patsubst tests/fuzz/fuzz_%.c,%,$(FUZZ_SRCS))
REPLAY_BINS  := $(addprefix $(BUILD)/tests/fuzz_replay_,$(FUZZ_NAMES))

.PHONY: all deps test test-unit test-integration test-kafka test-faults test-api demo bench fuzz fuzz-build up down clean help check-containers
.DEFAULT_GOAL := all
# Keep the objects that only pattern rules produce (make would delete them
# as intermediates).  Named one by one: a bare .SECONDARY would make every
# file intermediate, and a missing library object would then never be built.
TEST_OBJS := $(patsubst %.c,$(OBJ)/%.o,$(UNIT_SRCS) $(INTEG_SRCS) $(BENCH_SRCS) $(FUZZ_SRCS) tests/fuzz/replay_main.c)
PROG_OBJS := $(patsubst %.c,$(OBJ)/%.o,$(wildcard services/*/*.c tools/*/*.c))
.SECONDARY: $(TEST_OBJS) $(PROG_OBJS) $(PROTO_SRCS) $(PROTO_HDRS)

all: $(PROGS) $(UNIT_TESTS) $(INTEG_BINS) $(BENCH_BINS) $(REPLAY_BINS)

help:
	@echo "make              build every binary into bin/ (SANITIZE=address,undefined for sanitizers)"
	@echo "make test         unit tests, then integration tests on the embedded stack"
	@echo "make test-kafka   the integration tests against a real Apache Kafka broker"
	@echo "make test-api     docs/openapi.yaml validated, then schemathesis against a real dispatcher"
	@echo "make demo         the main job on the embedded stack"
	@echo "make test-faults  kill -9, Redis/PostgreSQL restarts, a broker down, during a simulated run; then reconcile"
	@echo "make bench        benchmarks (figures, not pass/fail)"
	@echo "make fuzz         libFuzzer targets (clang-14, ASan+UBSan) under build/fuzz/, each run FUZZ_SECONDS (60)"
	@echo "                  with inputs up to FUZZ_MAX_LEN (4096) bytes; FUZZ_TARGETS=\"check verdict\" runs some"
	@echo "make up / down    start / stop the embedded stack under run/"
	@echo "make check-containers  docker/ checked without an engine (build script, ldd, compose, promtool, hadolint)"

# Generated headers come first: every object may include them.
$(GEN)/%.pb-c.c $(GEN)/%.pb-c.h: proto/%.proto
	@mkdir -p $(GEN)
	@echo "  PROTOC  $<"
	$(Q)$(PROTOC_C) -Iproto --c_out=$(GEN) $<

$(OBJ)/gen/%.o: $(GEN)/%.c | $(PROTO_HDRS)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -Wno-unused-parameter -c -o $@ $<

$(OBJ)/%.o: %.c | $(PROTO_HDRS)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(LIB): $(LIB_OBJS)
	@rm -f $@
	@echo "  AR      $@"
	$(Q)$(AR) rcs $@ $^

.SECONDEXPANSION:
# The objects of binary $1.  (Called with $$*: a % in the prerequisite
# would be replaced by the stem before the expansion.)
prog_objs = $(foreach f,$(wildcard services/$1/*.c tools/$1/*.c),$(OBJ)/$(basename $f).o)
$(BIN)/%: $$(call prog_objs,$$*) $(LIB)
	@mkdir -p $(BIN)
	@echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: $(OBJ)/tests/unit/%.o $(LIB)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(shell pkg-config --libs $(TEST_PKGS))

$(BUILD)/tests/%: $(OBJ)/tests/integration/%.o $(LIB)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(shell pkg-config --libs $(TEST_PKGS))

$(BUILD)/tests/fuzz_replay_%: $(OBJ)/tests/fuzz/fuzz_%.o $(OBJ)/tests/fuzz/replay_main.o $(LIB)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $(filter-out $(LIB),$^) $(LIB) $(LDLIBS)

$(BUILD)/bench/%: $(OBJ)/tests/bench/%.o $(LIB)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# annot-sim alone speaks HTTP as a client (libcurl); its pure world model is
# unit-tested on its own.
$(BIN)/annot-sim: LDLIBS += $(shell pkg-config --libs libcurl)
$(BUILD)/tests/test_sim_model: $(OBJ)/tools/annot-sim/model.o

# The services' pure files a fuzz target drives, linked into both builds.
fuzz_service_objs = $(foreach f,$(FUZZ_SERVICE_SRCS_$1),$2/$(basename $f).o)
FUZZ_SERVICE_SRCS_submission := services/annot-autochecker/submission_check.c
FUZZ_SERVICE_SRCS_verdict    := services/annot-dispatcher/verdict.c
$(BUILD)/tests/fuzz_replay_submission: $(call fuzz_service_objs,submission,$(OBJ))
$(BUILD)/tests/fuzz_replay_verdict: $(call fuzz_service_objs,verdict,$(OBJ))

# make fuzz: the targets under libFuzzer, built by clang with AddressSanitizer
# and UndefinedBehaviorSanitizer (every report fatal) into build/fuzz/, apart
# from the $(CC) objects.  Each runs FUZZ_SECONDS on one process; new inputs
# go to build/fuzz/corpus/<target>/ (the seeds in tests/fuzz/corpus/ are only
# read), a crash to build/fuzz/artifacts/.  One process at a time, no -jobs
# (the machine may be shared; -jobs would also move the output to fuzz-N.log).
FUZZ_CC      ?= clang-14
FUZZ_SECONDS ?= 60
FUZZ_MAX_LEN ?= 4096
FUZZ_TARGETS ?= $(FUZZ_NAMES)
FUZZ_DIR     := $(BUILD)/fuzz
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS  := -O1 -g -std=c17 -Wall -Wextra -Werror -D_GNU_SOURCE -MMD -MP $(FUZZ_SAN)
FUZZ_LIB     := $(FUZZ_DIR)/libannot.a
FUZZ_LIB_OBJS := $(patsubst $(OBJ)/%,$(FUZZ_DIR)/obj/%,$(LIB_OBJS))
FUZZ_BINS    := $(addprefix $(FUZZ_DIR)/fuzz_,$(FUZZ_NAMES))
.SECONDARY: $(FUZZ_LIB_OBJS) $(patsubst %.c,$(FUZZ_DIR)/obj/%.o,$(FUZZ_SRCS)) \
  $(foreach n,$(FUZZ_NAMES),$(call fuzz_service_objs,$n,$(FUZZ_DIR)/obj) $(call fuzz_service_objs,$n,$(OBJ)))

$(FUZZ_DIR)/obj/gen/%.o: $(GEN)/%.c | $(PROTO_HDRS)
	@mkdir -p $(dir $@)
	@echo "  FUZZCC  $<"
	$(Q)$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -Wno-unused-parameter -c -o $@ $<

$(FUZZ_DIR)/obj/%.o: %.c | $(PROTO_HDRS)
	@mkdir -p $(dir $@)
	@echo "  FUZZCC  $<"
	$(Q)$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_LIB): $(FUZZ_LIB_OBJS)
	@rm -f $@
	@echo "  AR      $@"
	$(Q)$(AR) rcs $@ $^

$(FUZZ_DIR)/fuzz_%: $(FUZZ_DIR)/obj/tests/fuzz/fuzz_%.o $$(call fuzz_service_objs,$$*,$(FUZZ_DIR)/obj) $(FUZZ_LIB)
	@echo "  LD      $@"
	$(Q)$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)

fuzz-build:
	@tools/stack/install-deps.sh fuzz
	@$(MAKE) --no-print-directory $(FUZZ_BINS)

# One run of target $1 (a blank line ends the define: one recipe line each).
FUZZ_DICT_task_json := tests/fuzz/json.dict
FUZZ_DICT_verdict   := tests/fuzz/json.dict
define fuzz_run
	@mkdir -p $(FUZZ_DIR)/corpus/$1 $(FUZZ_DIR)/artifacts
	@echo "== fuzz_$1: $(FUZZ_SECONDS) s"
	$(FUZZ_DIR)/fuzz_$1 -max_total_time=$(FUZZ_SECONDS) -max_len=$(FUZZ_MAX_LEN) -print_final_stats=1 \
	  -artifact_prefix=$(FUZZ_DIR)/artifacts/$1- $(if $(FUZZ_DICT_$1),-dict=$(FUZZ_DICT_$1)) \
	  $(FUZZ_DIR)/corpus/$1 tests/fuzz/corpus/fuzz_$1

endef

fuzz: fuzz-build
	$(foreach t,$(FUZZ_TARGETS),$(call fuzz_run,$t))

deps:
	@tools/stack/install-deps.sh

test: deps
	@$(MAKE) --no-print-directory all
	tools/stack/run-tests.sh embedded

test-unit: all
	tools/stack/run-tests.sh unit

test-kafka: deps
	@$(MAKE) --no-print-directory all
	tools/stack/run-tests.sh kafka

demo: deps
	@$(MAKE) --no-print-directory all
	tools/stack/demo.sh

# The fault suite twice: on the embedded stack (the mock cluster's broker
# down for 30 s), then on Apache Kafka (the broker restarted).
test-faults: deps
	@$(MAKE) --no-print-directory all
	tools/stack/faults.sh
	tools/stack/install-deps.sh kafka
	ANNOT_STACK_KAFKA=real tools/stack/faults.sh

bench: deps
	@$(MAKE) --no-print-directory all
	tools/stack/run-bench.sh

check-containers:
	tools/ci/check-containers.sh

test-api: deps
	@$(MAKE) --no-print-directory all
	tools/ci/api-contract.sh

up: all
	tools/stack/up.sh

down:
	tools/stack/down.sh

clean:
	rm -rf $(BUILD) $(BIN)

-include $(shell find $(OBJ) $(FUZZ_DIR)/obj -name '*.d' 2>/dev/null)
