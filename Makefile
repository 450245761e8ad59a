# VoxLink build. `make` builds every binary, `make test` sets up the local
# stack and runs every test, `make run` runs the whole pipeline.
# SANITIZE=1 builds with ASan+UBSan into build/san (kept apart from build/rel).

SHELL := /bin/bash
CC ?= gcc
ifeq ($(CC),cc)
CC := gcc
endif

ifdef SANITIZE
BUILD ?= build/san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT := -O1
else
BUILD ?= build/rel
SANFLAGS :=
OPT := -O2
endif

# libmagic: the documents' content check (producers/ingress/documents.c).
# zlib: the exporter's gzip objects (workers/exporter).
PKGS := rdkafka libpq hiredis jansson libcurl openssl libmicrohttpd libjwt libmagic zlib
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CRITERION_LIBS := $(shell pkg-config --libs criterion 2>/dev/null)

CFLAGS := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wformat=2 \
	-g $(OPT) -pthread -MMD -MP -Icommon $(PKG_CFLAGS) $(SANFLAGS) $(EXTRA_CFLAGS)
# C++ only for the shims over C++ libraries (common/vox_phone.cc over
# libphonenumber): same warnings, no exceptions.
CXX ?= g++
CXXFLAGS := -std=c++17 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow \
	-Wformat=2 -fno-exceptions -g $(OPT) -pthread -MMD -MP -Icommon \
	$(SANFLAGS) $(EXTRA_CXXFLAGS)
LDFLAGS := -pthread $(SANFLAGS)
# libphonenumber 8.12 has no .pc file. Its own needs (protobuf, ICU, absl)
# come in through the .so files; ICU is named too because the shim calls it
# (icu::Locale) and ld refuses symbols from a library not on the line.
PHONE_LIBS := -lphonenumber -lgeocoding -licuuc -lstdc++
# ICU's calendars and time zones (common/vox_schedule.c: business hours).
ICU_LIBS := -licui18n -licuuc
# libharu renders invoices as PDF (producers/ingress/invoice_pdf.c); no .pc file.
PDF_LIBS := -lhpdf
LDLIBS := $(PKG_LIBS) $(PHONE_LIBS) $(ICU_LIBS) $(PDF_LIBS) -lm

COMMON_SRC := $(wildcard common/*.c)
COMMON_CXX_SRC := $(wildcard common/*.cc)
COMMON_OBJ := $(COMMON_SRC:%.c=$(BUILD)/%.o) $(COMMON_CXX_SRC:%.cc=$(BUILD)/%.o)
LIB := $(BUILD)/libvoxcommon.a

# One binary per directory: its .c files plus the common library.
PROGRAMS := producers/ingress producers/cdr-import workers/provisioning \
	workers/metering workers/notifications workers/porting workers/invoicing \
	workers/exporter tools/voxctl
BINS := $(foreach p,$(PROGRAMS),$(BUILD)/bin/$(notdir $(p)))

UNIT_SRC := $(wildcard tests/unit/*.c)
INTEG_SRC := $(wildcard tests/integration/*.c)
TEST_BINS := $(BUILD)/tests/unit_tests $(BUILD)/tests/integration_tests
TEST_ONLY_PROGRAMS := workers/metering workers/provisioning workers/notifications \
	workers/porting workers/invoicing workers/exporter
# Where the notifications worker finds its templates unless
# VOX_NOTIFY_TEMPLATES says otherwise: this tree's.
$(BUILD)/workers/notifications/main.o: CFLAGS += \
	-DVOX_TEMPLATE_DIR='"$(CURDIR)/workers/notifications/templates"'
TEST_ONLY_BINS := $(foreach p,$(TEST_ONLY_PROGRAMS),$(BUILD)/test-bin/$(notdir $(p)))

.PHONY: all test run lint format clean deps stack-up stack-down unit integration web
all: $(BINS) web

# The web dashboard (web/, docs/DASHBOARD.md): its npm packages from the
# lockfile (`npm ci`: exactly those versions), then esbuild's bundles into
# build/web, which the ingress serves at /dashboard/ (VOX_DASHBOARD_DIR).
WEB_SRC := $(shell find web/src -type f 2>/dev/null) web/build.mjs
web: build/web/index.html
web/node_modules/.package-lock.json: web/package-lock.json web/package.json
	cd web && npm ci --no-audit --no-fund --loglevel=error
	@touch $@
build/web/index.html: web/node_modules/.package-lock.json $(WEB_SRC)
	node web/build.mjs build/web

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/%.o: %.cc
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -c -o $@ $<

$(LIB): $(COMMON_OBJ)
	@rm -f $@
	ar rcs $@ $^

# Each program is its main.c over a library of its own logic
# ($(BUILD)/lib/lib<name>.a: every other .c of its directory), which the
# unit tests link too, so a program's code is testable without running it.
prog_lib = $(BUILD)/lib/lib$(notdir $(1)).a
prog_objs = $(patsubst %.c,$(BUILD)/%.o,$(filter-out $(1)/main.c,$(wildcard $(1)/*.c)))
PROG_LIBS := $(foreach p,$(PROGRAMS),$(call prog_lib,$(p)))
define program_rule
$(call prog_lib,$(1)): $(call prog_objs,$(1))
	@mkdir -p $$(dir $$@)
	@rm -f $$@
	ar rcs $$@ $$^
$(BUILD)/bin/$(notdir $(1)): $(BUILD)/$(1)/main.o $(call prog_lib,$(1)) $(LIB)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(LDLIBS)
endef
$(foreach p,$(PROGRAMS),$(eval $(call program_rule,$(p))))

# Unit tests: the common library and every program's library (only the
# members a test refers to are linked in).
$(BUILD)/tests/unit_tests: $(UNIT_SRC:%.c=$(BUILD)/%.o) $(PROG_LIBS) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(CRITERION_LIBS)

# The integration tests run the test-only binaries too (order-only: not
# linked into the test binary).
$(BUILD)/tests/integration_tests: $(INTEG_SRC:%.c=$(BUILD)/%.o) $(LIB) | $(TEST_ONLY_BINS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(CRITERION_LIBS)

# Test-only binaries: the workers with vox_fault's hooks compiled in
# (-DVOX_FAULT_HOOKS: abort on a chosen record, tests/integration/
# test_crash.c). That vox_fault.o comes before $(LIB), so the archive's
# no-op member is never pulled in; release binaries have no hook.
$(BUILD)/test-obj/vox_fault.o: common/vox_fault.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DVOX_FAULT_HOOKS -c -o $@ $<
define test_bin_rule
$(BUILD)/test-bin/$(notdir $(1)): $(BUILD)/$(1)/main.o $(call prog_lib,$(1)) \
		$(BUILD)/test-obj/vox_fault.o $(LIB)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(LDLIBS)
endef
$(foreach p,$(TEST_ONLY_PROGRAMS),$(eval $(call test_bin_rule,$(p))))

-include $(shell find build -name '*.d' 2>/dev/null)

# Dependencies are installed only when something is missing (fast no-op).
deps:
	@ops/install-deps

# The test stack runs beside the `make run` one: own dir and ports, and no
# fsync (its data is thrown away).
TEST_ENV := VOX_RUN_DIR=$(CURDIR)/.run/test VOX_PG_PORT=25532 VOX_REDIS_PORT=26479 \
	VOX_KAFKA_PORT=29192 VOX_KAFKA_CONTROLLER_PORT=29193 VOX_INGRESS_PORT=18180 VOX_CARRIER_PORT=27180 \
	VOX_PG_FAST=1 VOX_SMTP_PORT=27125 VOX_SMS_PORT=27181 \
	VOX_S3_PORT=27190 VOX_CARRIER_PORT_TIME_SCALE=500000 VOX_PAYMENT_PORT=27182

test: deps
	@$(MAKE) --no-print-directory all $(TEST_BINS)
	@$(TEST_ENV) BUILD=$(BUILD) tests/run

# make chaos (docs/RELIABILITY.md): the fault scenarios of tests/chaos against a three-broker
# cluster stack of its own (ports beside the test stack's, PostgreSQL durable); not part of
# `make test`. CHAOS="1 4" runs some of them.
CHAOS_ENV := VOX_RUN_DIR=$(CURDIR)/.run/chaos VOX_PG_PORT=25632 VOX_REDIS_PORT=26579 \
	VOX_KAFKA_PORT=29292 VOX_KAFKA_CONTROLLER_PORT=29293 VOX_INGRESS_PORT=18280 VOX_CARRIER_PORT=27280 \
	VOX_SMTP_PORT=27225 VOX_SMS_PORT=27281 VOX_S3_PORT=27290 VOX_PAYMENT_PORT=27282 \
	VOX_CARRIER_PORT_TIME_SCALE=500000
CHAOS ?=
.PHONY: chaos
chaos: deps
	@$(MAKE) --no-print-directory all bench-tools $(BUILD)/bench/metering_load
	@$(CHAOS_ENV) BUILD=$(BUILD) tests/chaos/run $(CHAOS)

# The contract tests alone (tests/shell/contract.sh, part of `make test` with
# 20 examples per operation) with CONTRACT_EXAMPLES per operation, on the
# test stack.
CONTRACT_EXAMPLES ?= 200
.PHONY: contract-full
contract-full: deps
	@$(MAKE) --no-print-directory all
	@$(TEST_ENV) bash -c 'ops/stack up && eval "$$(ops/stack env)" && \
		export VOX_REDIS_URL=$${VOX_REDIS_URL:-redis://127.0.0.1:$$VOX_REDIS_PORT} && \
		$(BUILD)/bin/voxctl migrate && \
		VOX_BIN_DIR=$(CURDIR)/$(BUILD)/bin VOX_TEST_LOGS=$(CURDIR)/$(BUILD)/test-logs \
		VOX_CONTRACT_EXAMPLES=$(CONTRACT_EXAMPLES) tests/shell/contract.sh'

# The deploy manifests, alert rules and dashboard validated offline
# (tests/shell/deploy_manifests.sh, also part of `make test`; docs/DEPLOY.md).
.PHONY: deploy-check
deploy-check: deps
	@tests/shell/deploy_manifests.sh

unit: $(BUILD)/tests/unit_tests
	$(BUILD)/tests/unit_tests

run: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) ops/run

stack-up:
	ops/stack up
stack-down:
	ops/stack down

LINT_FILES = $(shell git ls-files '*.c' '*.cc' '*.h' 2>/dev/null)
lint:
	@clang-format --dry-run --Werror $(LINT_FILES)
	@tools/check-banned $(LINT_FILES)
	@echo "lint: ok"

format:
	clang-format -i $(LINT_FILES)

clean:
	rm -rf build

# libFuzzer targets (clang): tests/fuzz/fuzz_<name>.c against the common
# sources, ASan+UBSan. FUZZ_SECONDS per target. The C++ shims are compiled
# apart with clang++ (fuzzer-no-link: instrumented, no second main) and the
# link asks for UBSan's C++ runtime (vptr checks).
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_SAN := address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -g -O1 -Icommon $(PKG_CFLAGS) \
	-fsanitize=fuzzer,$(FUZZ_SAN) -fsanitize-link-c++-runtime
FUZZ_CXXFLAGS := -std=c++17 -D_GNU_SOURCE -g -O1 -Icommon -fno-exceptions \
	-fsanitize=fuzzer-no-link,$(FUZZ_SAN)
FUZZ_CXX_OBJ := $(COMMON_CXX_SRC:%.cc=build/fuzz/%.o)
.SECONDARY: $(FUZZ_CXX_OBJ)
.PHONY: fuzz fuzz-build
fuzz-build: $(FUZZ_TARGETS:%=build/fuzz/fuzz_%)
build/fuzz/%.o: %.cc
	@mkdir -p $(dir $@)
	clang++ $(FUZZ_CXXFLAGS) -c -o $@ $<
build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(COMMON_SRC) $(FUZZ_CXX_OBJ)
	@mkdir -p build/fuzz
	clang $(FUZZ_CFLAGS) -o $@ $^ $(LDLIBS)
fuzz: fuzz-build
	@for t in $(FUZZ_TARGETS); do \
		mkdir -p build/fuzz/corpus-$$t; \
		build/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -max_len=65536 \
			build/fuzz/corpus-$$t tests/fuzz/corpus/$$t || exit 1; \
	done

# bench/ingress: accepted commands/s and latency against two ceilings measured
# in the same run (bench/README.md). Not part of `make test`.
BENCH_TOOLS := $(BUILD)/bench/produce_rate $(BUILD)/bench/openloop
.PHONY: bench bench-tools
bench-tools: $(BENCH_TOOLS)
$(BUILD)/bench/%: bench/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LDLIBS)
bench: deps
	@$(MAKE) --no-print-directory all bench-tools
	@BUILD=$(BUILD) BENCH_NO_BUILD=1 bench/ingress

# bench/numbers: search p50/p99 (cold, cached) and order latency against an
# inventory of 1,000,000 numbers, in a stack of its own (bench/README.md).
# Not part of `make test`.
# bench/metering: records/s of the metering worker against a raw binary
# COPY of the same rows (bench/README.md). Not part of `make test`.
.PHONY: bench-metering
bench-metering: deps
	@$(MAKE) --no-print-directory all $(BUILD)/bench/metering_load
	@BUILD=$(BUILD) BENCH_NO_BUILD=1 bench/metering
$(BUILD)/bench/metering_load: bench/metering_load.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

# bench/provisioning: canary commands/s of one provisioning worker against
# a raw consume of the topic and a raw set-based SQL of the same writes
# (bench/README.md). Not part of `make test`.
.PHONY: bench-provisioning
bench-provisioning: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) BENCH_NO_BUILD=1 bench/provisioning

# bench/invoicing: 10,000 invoices through Kafka and the invoicing worker
# over 2,000,000 usage rows (VOX_BENCH_ROWS), against one hand-written SQL
# GROUP BY of the same rows, on the test stack (bench/README.md). Not part
# of `make test`.
.PHONY: bench-invoicing
bench-invoicing: deps
	@$(MAKE) --no-print-directory all $(BUILD)/bench/invoicing_load
	@BUILD=$(BUILD) BENCH_NO_BUILD=1 bench/invoicing
$(BUILD)/bench/invoicing_load: bench/invoicing_load.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

# bench/routing: routing decisions at fixed open-loop rates next to an
# unpipelined Redis GET loop, against the running stack (bench/README.md).
# Not part of `make test`.
.PHONY: bench-routing
bench-routing: deps
	@$(MAKE) --no-print-directory all $(BUILD)/bench/openloop
	@BUILD=$(BUILD) BENCH_NO_BUILD=1 bench/routing

# bench/e2e: accepted -> completed latency of canaries at fixed rates through
# the ingress, Kafka and the provisioning worker, and the highest rate whose
# backlog does not grow (bench/README.md). Not part of `make test`.
.PHONY: bench-e2e
bench-e2e: deps
	@$(MAKE) --no-print-directory all bench-tools
	@BUILD=$(BUILD) BENCH_NO_BUILD=1 bench/e2e

# bench/memory: RSS of the ingress with 10,000 idle keep-alive connections
# and of every worker at rest and after work (bench/README.md). Not part of
# `make test`.
.PHONY: bench-memory
bench-memory: deps
	@$(MAKE) --no-print-directory all bench-tools
	@BUILD=$(BUILD) BENCH_NO_BUILD=1 bench/memory

.PHONY: bench-numbers
bench-numbers: deps
	@$(MAKE) --no-print-directory all $(BUILD)/bench/numbers_load $(BUILD)/bench/numbers_orders
	@BUILD=$(BUILD) BENCH_NO_BUILD=1 bench/numbers

# bench/notifications: webhook deliveries/s of the notifications worker
# against a plain libcurl loop to the same receiver, and event-to-delivery
# p99 at 1,000/s, on a stack of its own (bench/README.md). Not part of
# `make test`.
NOTIFY_BENCH_TOOLS := $(BUILD)/bench/notify_receiver $(BUILD)/bench/notify_loop \
	$(BUILD)/bench/notify_load
.PHONY: bench-notifications
bench-notifications: deps
	@$(MAKE) --no-print-directory all $(NOTIFY_BENCH_TOOLS)
	@BUILD=$(BUILD) BENCH_NO_BUILD=1 bench/notifications
# Each links the common library (vox_whsig, vox_crypto, vox_event).
$(BUILD)/bench/notify_receiver $(BUILD)/bench/notify_loop $(BUILD)/bench/notify_load: \
		$(BUILD)/bench/notify_%: bench/notify_%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

# bench/export: records/s of the exporter (events to gzip'd objects in the
# S3 stand-in, committed) against `kcat -C -e` reading the same topic to a
# file, in the same run, on the test stack (bench/README.md). Not part of
# `make test`.
.PHONY: bench-export
bench-export: deps
	@$(MAKE) --no-print-directory all $(BUILD)/bench/export_load
	@$(TEST_ENV) BUILD=$(BUILD) BENCH_NO_BUILD=1 bench/export
$(BUILD)/bench/export_load: bench/export_load.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)
