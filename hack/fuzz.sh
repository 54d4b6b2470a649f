#!/bin/bash
# Build every libFuzzer target test/fuzz/fuzz_<name>.c with clang (ASan + UBSan)
# and run each for FUZZ_SECONDS (default 20) seconds, starting from a scratch
# copy of its seed corpus test/fuzz/corpus/<name>/ so the repository stays
# clean. Fails if any target crashes, leaks, hangs or trips a sanitizer; the
# input that did it is kept under build/fuzz/<name>/ and named in the output.
#
#   hack/fuzz.sh [NAME...]        (default: every target)
#   FUZZ_SECONDS=300 hack/fuzz.sh decode
#
# The library objects (LIB_OBJ, compiled by the Makefile's own rule) and the
# flags (CSTD, WARN, PKG_CFLAGS, PKG_LIBS) come from the Makefile, so a target
# can call anything in informer/, proxy/, rules/ and cmd/ but main().
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-20}
cc=${FUZZ_CC:-clang}
out=build/fuzz
flags="-g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all"

command -v "$cc" >/dev/null || { echo "fuzz: $cc not found (apt-get install clang)" >&2; exit 1; }

# The words of Makefile variable $1 (with make variable overrides $2...), as make computes it.
make_var() {
	local var=$1
	shift
	# shellcheck disable=SC2016 # $(...) is make syntax here
	printf 'fuzz-print-var:\n\t@echo $(%s)\n' "$var" |
		make -s --no-print-directory -f Makefile -f - fuzz-print-var "$@"
}

# ---- build ---------------------------------------------------------------------

# The library objects through the Makefile's own rule (same defines and flags),
# instrumented for coverage; libFuzzer's main() comes only with each target.
# Warnings are not errors here: clang may warn where the gcc build does not.
read -ra lib_obj <<<"$(make_var LIB_OBJ BUILD="$out")"
make -s -j"$(nproc)" BUILD="$out" CC="$cc" WERROR= CFLAGS="$flags -fsanitize=fuzzer-no-link" \
	"${lib_obj[@]}"
rm -f "$out/libkip.a"
ar rcs "$out/libkip.a" "${lib_obj[@]}"
read -ra cflags <<<"$(make_var CSTD) $(make_var WARN) -I. $(make_var PKG_CFLAGS) $flags"
read -ra pkg_libs <<<"$(make_var PKG_LIBS)"

targets=()
if [ $# -gt 0 ]; then
	for name in "$@"; do targets+=("test/fuzz/fuzz_$name.c"); done
else
	targets=(test/fuzz/fuzz_*.c)
fi
for src in "${targets[@]}"; do
	name=$(basename "$src" .c)
	# the archive only brings in the objects the target needs
	"$cc" "${cflags[@]}" -fsanitize=fuzzer "$src" "$out/libkip.a" "${pkg_libs[@]}" -o "$out/$name"
done

# ---- run -----------------------------------------------------------------------

failed=0
summary=()
for src in "${targets[@]}"; do
	name=$(basename "$src" .c)
	short=${name#fuzz_}
	dir="$out/$short"
	rm -rf "$dir"
	mkdir -p "$dir/corpus"
	if [ -d "test/fuzz/corpus/$short" ]; then
		cp -r "test/fuzz/corpus/$short/." "$dir/corpus/"
	fi
	seeds=$(find "$dir/corpus" -type f | wc -l)
	echo "fuzz: $name for ${seconds}s from $seeds seeds (log: $dir/log)"
	if ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
		"$out/$name" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$dir/" "$dir/corpus" >"$dir/log" 2>&1; then
		runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log")
		cov=$(grep -o 'cov: [0-9]*' "$dir/log" | tail -1)
		summary+=("PASS  $name: ${runs:-?} runs, $cov, corpus $seeds -> $(find "$dir/corpus" -type f | wc -l)")
	else
		failed=$((failed + 1))
		tail -n 40 "$dir/log"
		summary+=("FAIL  $name: $(find "$dir" -maxdepth 1 -name '[a-z]*-*' -type f | tr '\n' ' ')")
	fi
done

printf '%s\n' "${summary[@]}"
[ "$failed" -eq 0 ]
