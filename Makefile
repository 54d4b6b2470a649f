# kube-iptables-proxy - plain GNU make + pkg-config (shared/style.md b.10).
#
#   make               build _output/bin/kube-iptables-proxy and its man page
#   make test          every test: unit (ASan+UBSan), golden, iptables in netns, suites
#   make check         unit tests only, under AddressSanitizer + UBSan
#   make valgrind      unit tests under valgrind (normal build)
#   make fuzz          build and briefly run the libFuzzer targets (clang)
#   make bench         benchmarks (tables, not assertions)
#   make format / format-check / check-headers / check-purity / tidy

PKGS       := libuv libcurl jansson yaml-0.1 libcrypto libnetfilter_conntrack libmnl
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lhttp_parser -lm

VERSION    ?= $(shell cat VERSION 2>/dev/null || echo 0.0.0)
GIT_REV    ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)$(shell git diff --quiet HEAD 2>/dev/null || echo -dirty)

CSTD    := -std=c11 -D_GNU_SOURCE
WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wformat=2 -Wvla -Wpointer-arith -Wundef \
           -Wno-format-zero-length
WERROR  ?= -Werror
CFLAGS  ?= -O2 -g
ALL_CFLAGS = $(CSTD) $(WARN) $(WERROR) -I. $(PKG_CFLAGS) $(CFLAGS) -MMD -MP \
             -DKIP_VERSION='"$(VERSION)"' -DKIP_GIT_REV='"$(GIT_REV)"'

BUILD   ?= build/release
BIN     := _output/bin/kube-iptables-proxy
MAN     := _output/man/man8/kube-iptables-proxy.8

CMD_SRC  := $(filter-out cmd/main.c,$(wildcard cmd/*.c))
LIB_SRC  := $(wildcard informer/*.c proxy/*.c rules/*.c) $(CMD_SRC)
LIB_OBJ  := $(patsubst %.c,$(BUILD)/%.o,$(LIB_SRC))
TEST_SRC := $(wildcard test/test_*.c)
TESTS    := $(patsubst test/%.c,$(BUILD)/test/%,$(TEST_SRC))
TEST_HELPERS := $(patsubst %.c,$(BUILD)/%.o,$(wildcard test/helpers/*.c))

ASAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

.PHONY: all man test check run-tests valgrind fuzz bench format format-check check-headers \
        check-purity tidy clean install-deps golden verify-restore suites

all: $(BIN) $(MAN)

$(BIN): $(BUILD)/cmd/main.o $(LIB_OBJ)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

# The man page is printed by the binary from the flag table that drives --help, so the
# two cannot disagree; it is built, never committed (man -l _output/man/man8/...).
man: $(MAN)
$(MAN): $(BIN)
	@mkdir -p $(@D)
	$(BIN) --man > $@.tmp && mv $@.tmp $@

# The version string depends on the git revision; rebuild main.o when it changes.
$(BUILD)/cmd/main.o: $(BUILD)/.rev
$(BUILD)/.rev: FORCE
	@mkdir -p $(@D)
	@echo '$(VERSION) $(GIT_REV)' | cmp -s - $@ || echo '$(VERSION) $(GIT_REV)' > $@
FORCE:

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/test/%: $(BUILD)/test/%.o $(LIB_OBJ) $(TEST_HELPERS)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(shell pkg-config --libs cmocka)

# ---- tests -----------------------------------------------------------

# Everything CI runs (README's test command).
test:
	hack/test.sh

# Unit tests in a separate build dir so sanitized and normal objects never mix.
check:
	$(MAKE) BUILD=build/asan CFLAGS="$(ASAN_FLAGS)" LDFLAGS="-fsanitize=address,undefined" \
		bin-asan run-tests

bin-asan: $(BUILD)/cmd/main.o $(LIB_OBJ)
	@mkdir -p _output/asan
	$(CC) $(LDFLAGS) -o _output/asan/kube-iptables-proxy $^ $(PKG_LIBS)

run-tests: $(TESTS)
	@set -e; export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1; \
	for t in $(TESTS); do echo "== $$t"; $$t; done

valgrind:
	$(MAKE) BUILD=build/valgrind CFLAGS="-O1 -g" build-tests
	@set -e; for t in $(patsubst test/%.c,build/valgrind/test/%,$(TEST_SRC)); do \
		echo "== valgrind $$t"; \
		valgrind -q --leak-check=full --show-leak-kinds=definite,indirect,possible \
			--errors-for-leak-kinds=definite,indirect,possible --error-exitcode=1 $$t >/dev/null; \
	done

build-tests: $(TESTS)

fuzz:
	hack/fuzz.sh

bench: $(BIN)
	hack/bench.sh

# ---- hygiene ---------------------------------------------------------

ALL_C_H = $(shell git ls-files '*.c' '*.h' 2>/dev/null)

format:
	clang-format -i $(ALL_C_H)

format-check:
	clang-format --dry-run -Werror $(ALL_C_H)

# Every header compiles on its own (shared/style.md b.4).
check-headers:
	@set -e; for h in $(filter %.h,$(ALL_C_H)); do \
		printf '#include "%s"\n' "$$h" | $(CC) $(CSTD) $(WARN) $(WERROR) -I. $(PKG_CFLAGS) \
			-x c -fsyntax-only - || { echo "check-headers: $$h is not self-contained"; exit 1; }; \
	done; echo "check-headers: ok"

# Pure modules never include the event loop or the HTTP client (b.2).
PURE := rules/*.[ch] informer/lines.[ch] informer/decode.[ch] informer/types.h informer/yaml.[ch] \
        informer/ip.[ch] proxy/tracker.[ch]
check-purity:
	@if grep -nE '#include <(uv|curl/curl)\.h>' $(wildcard $(PURE)); then \
		echo "check-purity: a pure module includes uv.h or curl.h"; exit 1; fi
	@if grep -nE '\b(fopen|open|read|write|popen|system|fork|exec[lv]p?e?|getenv|time|clock_gettime|rand|random)\s*\(' \
		$(wildcard rules/*.c); then echo "check-purity: I/O or hidden input in rules/"; exit 1; fi
	@echo "check-purity: ok"

tidy:
	clang-tidy $(filter %.c,$(ALL_C_H)) -- $(CSTD) -I. $(PKG_CFLAGS)

install-deps:
	hack/install-deps.sh

clean:
	rm -rf build _output

-include $(shell find build -name '*.d' 2>/dev/null)

# informer test tools
# The informer's test driver (test/informer/ runs it against test/apiserver/).
$(BUILD)/test/tools/informer-dump: $(BUILD)/test/tools/informer-dump.o $(LIB_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)
$(BUILD)/test/tools/canon-cmp: $(BUILD)/test/tools/canon-cmp.o $(LIB_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)
