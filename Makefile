# Contact-center platform: build, test, run, bench, lint.
#
#   make run        install what is missing, build, start the local stack and every service
#                   (DEMO=1: plus agent phones and callers over sipp, see deploy/local/README.md)
#   make test       install, build with ASan+UBSan, start a private stack, run unit + integration tests
#   make build      release build of libcc, the dev broker and every service
#   make test-unit  unit tests only (no servers)
#   make bench      benchmarks under tests/load (prints "bench: <name> <value> <unit> ..." lines)
#   make lint       clang-format check + cppcheck
#   make clean      remove build outputs
#
# BUILD selects the output root (default build/); VARIANT is release or asan.

BUILD   ?= build
VARIANT ?= release
OUT     := $(BUILD)/$(VARIANT)

PKGS    := rdkafka libmicrohttpd jansson hiredis libpq libcrypto sofia-sip-ua
CC      ?= cc
WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-missing-field-initializers
CSTD    := -std=gnu11 -D_GNU_SOURCE
INCS    := -Icommon
ifeq ($(VARIANT),asan)
OPT     := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
else
OPT     := -O2 -g
endif
# Release binaries allocate through jemalloc: Sofia-SIP, Jansson, hiredis and librdkafka allocate
# per message, and glibc's malloc was ~18 % of sip-edge's SIP thread (jemalloc: sip-edge -10 % of
# CPU per call, bench-sip A B A B). Linked even where the binary itself calls no malloc (its
# libraries do; gcc passes --as-needed here). Sanitizer builds keep ASan's allocator.
# MALLOC_LIBS= links glibc's instead.
ifeq ($(VARIANT),asan)
MALLOC_LIBS ?=
else
MALLOC_LIBS ?= -Wl,--push-state,--no-as-needed -ljemalloc -Wl,--pop-state
endif
# -isystem: third-party headers (Sofia-SIP's) are not held to our warning flags
PKG_CFLAGS = $(patsubst -I%,-isystem %,$(shell pkg-config --cflags $(PKGS) 2>/dev/null))
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CFLAGS_ALL  = $(CSTD) $(WARN) $(OPT) $(INCS) $(PKG_CFLAGS) -MMD -MP $(CFLAGS)
LDFLAGS_ALL = $(OPT) $(LDFLAGS)
LIBS_ALL    = $(PKG_LIBS) $(MALLOC_LIBS) -lpthread -lm $(LIBS)

# ---- sources ---------------------------------------------------------------
COMMON_SRC := $(wildcard common/*.c)
COMMON_OBJ := $(COMMON_SRC:%.c=$(OUT)/obj/%.o)
LIBCC      := $(OUT)/libcc.a

SERVICES     := $(notdir $(patsubst %/,%,$(dir $(wildcard services/*/main.c))))
SERVICE_BINS := $(SERVICES:%=$(OUT)/bin/cc-%)

DEVBROKER := $(OUT)/bin/cc-devbroker
DEVBROKER_SRC := $(wildcard deploy/local/devbroker/*.c)

UNIT_SRC   := $(shell find tests/unit -name '*.c' 2>/dev/null | sort)
UNIT_BIN   := $(OUT)/tests/unit-tests
INTEG_SRC  := $(wildcard tests/integration/*.c)
INTEG_BIN  := $(OUT)/tests/integration-tests
HELPER_SRC := $(wildcard tests/integration/helpers/*.c)
HELPER_BINS:= $(HELPER_SRC:tests/integration/helpers/%.c=$(OUT)/tests/helpers/%)
BENCH_SRC  := $(wildcard tests/load/*.c)
BENCH_BINS := $(BENCH_SRC:tests/load/%.c=$(OUT)/bench/%)

.PHONY: all build deps run test test-unit test-integration bench lint format clean help
.DEFAULT_GOAL := build

help:
	@sed -n '1,12p' Makefile

deps:
	@deploy/local/install-deps.sh

all build: $(LIBCC) $(DEVBROKER) $(SERVICE_BINS)

# ---- compile rules ---------------------------------------------------------
$(OUT)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c $< -o $@

$(LIBCC): $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(DEVBROKER): $(DEVBROKER_SRC:%.c=$(OUT)/obj/%.o) $(LIBCC)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LIBS_ALL)

# one binary per service: services/<name>/*.c + libcc
define SERVICE_template
$(OUT)/bin/cc-$(1): $(patsubst %.c,$(OUT)/obj/%.o,$(wildcard services/$(1)/*.c)) $(LIBCC)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS_ALL) -o $$@ $$^ $$(LIBS_ALL)
endef
$(foreach s,$(SERVICES),$(eval $(call SERVICE_template,$(s))))

# service modules (everything but main.c) are linked into the test binaries; helper programs and
# benchmarks link the per-service archives, from which the linker takes only what they use
SERVICE_MODULE_OBJ := $(patsubst %.c,$(OUT)/obj/%.o,$(filter-out %/main.c,$(wildcard services/*/*.c)))
SERVICE_LIBS := $(SERVICES:%=$(OUT)/lib%.a)
TEST_INCS := $(patsubst %,-I%,$(wildcard services/*)) -Itests

define SERVICE_LIB_template
$(OUT)/lib$(1).a: $(patsubst %.c,$(OUT)/obj/%.o,$(filter-out %/main.c,$(wildcard services/$(1)/*.c)))
	@mkdir -p $$(dir $$@)
	rm -f $$@ && ar rcs $$@ $$^
endef
$(foreach s,$(SERVICES),$(eval $(call SERVICE_LIB_template,$(s))))

# metrics-aggregator serves its wallboard page from its own binary: tools/embed-files.sh turns the
# page's files into C arrays that metrics_wallboard.c includes from $(OUT)/gen
WALLBOARD_FILES := $(addprefix services/metrics-aggregator/wallboard/,index.html wallboard.js wallboard.css)
WALLBOARD_INC   := $(OUT)/gen/metrics_wallboard_files.inc
$(WALLBOARD_INC): tools/embed-files.sh $(WALLBOARD_FILES)
	@mkdir -p $(dir $@)
	sh tools/embed-files.sh asset $(WALLBOARD_FILES) > $@.tmp && mv $@.tmp $@
$(OUT)/obj/services/metrics-aggregator/metrics_wallboard.o: $(WALLBOARD_INC)
$(OUT)/obj/services/metrics-aggregator/metrics_wallboard.o: INCS += -I$(OUT)/gen

$(OUT)/obj/tests/%.o: tests/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(TEST_INCS) -c $< -o $@

$(UNIT_BIN): $(UNIT_SRC:%.c=$(OUT)/obj/%.o) $(SERVICE_MODULE_OBJ) $(LIBCC)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LIBS_ALL) -lcriterion

$(INTEG_BIN): $(INTEG_SRC:%.c=$(OUT)/obj/%.o) $(SERVICE_MODULE_OBJ) $(LIBCC)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LIBS_ALL) -lcriterion

$(OUT)/tests/helpers/%: $(OUT)/obj/tests/integration/helpers/%.o $(SERVICE_LIBS) $(LIBCC)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LIBS_ALL)

$(OUT)/bench/%: $(OUT)/obj/tests/load/%.o $(SERVICE_LIBS) $(LIBCC)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LIBS_ALL)

# ---- top-level targets -----------------------------------------------------
run: deps
	@$(BUILD_LOCK) $(MAKE) --no-print-directory build VARIANT=release
	@$(if $(DEMO),CC_RUN_DEMO=$(DEMO) )deploy/local/run.sh $(BUILD)/release

# The build step holds a lock so that two `make test` runs in one checkout never compile into
# the same objects at once; their stacks are private anyway (.stack/test-<pid>).
BUILD_LOCK = mkdir -p $(BUILD) && flock $(BUILD)/.lock

test: deps
	@$(BUILD_LOCK) $(MAKE) --no-print-directory VARIANT=asan test-build
	@tests/run-tests.sh $(BUILD)/asan all

test-unit:
	@$(MAKE) --no-print-directory VARIANT=asan $(BUILD)/asan/tests/unit-tests
	@tests/run-tests.sh $(BUILD)/asan unit

test-integration:
	@$(BUILD_LOCK) $(MAKE) --no-print-directory VARIANT=asan test-build
	@tests/run-tests.sh $(BUILD)/asan integration

.PHONY: test-build bench-build
test-build: $(LIBCC) $(DEVBROKER) $(SERVICE_BINS) $(UNIT_BIN) $(INTEG_BIN) $(HELPER_BINS)

bench-build: $(LIBCC) $(DEVBROKER) $(SERVICE_BINS) $(BENCH_BINS) $(HELPER_BINS)

bench: deps
	@$(MAKE) --no-print-directory VARIANT=release bench-build
	@tests/load/run.sh $(BUILD)/release

bench-%: deps
	@$(MAKE) --no-print-directory VARIANT=release bench-build
	@tests/load/run.sh $(BUILD)/release $*

LINT_FILES = $(shell git ls-files --cached --others --exclude-standard '*.c' '*.h' 2>/dev/null || find common services tests deploy -name '*.[ch]')
lint:
	@clang-format --dry-run --Werror $(LINT_FILES)
	@cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
		--inline-suppr --suppress=missingIncludeSystem --suppress='unknownMacro:tests/*' -Icommon $(LINT_FILES)
	@echo "lint: clean"

format:
	@clang-format -i $(LINT_FILES)

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
