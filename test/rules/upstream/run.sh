#!/bin/sh
# Acceptance test: our --dump-rules output vs. the rules upstream kube-proxy's own
# unit tests assert (see README.md in this directory).
#
#   test/rules/upstream/run.sh [CASE...]     run all (or the named) cases
#   test/rules/upstream/run.sh --selftest    check the data and the sorter only
#
# Environment:
#   BIN=path            binary to test (default _output/bin/kube-iptables-proxy,
#                       relative to the repository root)
#   PYTHON=path         Python 3 interpreter (default /usr/bin/python3)
#   SHORT_MARKS=0|1     1 (default): rewrite zero-padded mark values in OUR output
#                       ("0x00004000" -> "0x4000") before comparing, because the
#                       upstream fake proxier hard-codes "0x4000" while real
#                       kube-proxy prints Go's "%#08x".  0: compare verbatim.
#   KEEP=dir            keep each case's raw output in dir/<case>.out
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
PYTHON=${PYTHON:-/usr/bin/python3}
BIN=${BIN:-_output/bin/kube-iptables-proxy}
SHORT_MARKS=${SHORT_MARKS:-1}
SORT="$HERE/iptables_sort.py"

cd "$ROOT" || exit 2

if [ ! -x "$PYTHON" ]; then
	echo "run.sh: Python 3 interpreter not found at $PYTHON (set PYTHON=...)" >&2
	exit 2
fi

if [ "${1:-}" = "--selftest" ]; then
	exec "$PYTHON" "$HERE/tools/selftest.py"
fi

if [ ! -e "$BIN" ]; then
	echo "run.sh: binary '$BIN' not found (relative to $ROOT); build it first (make) or set BIN=..." >&2
	exit 2
fi
if [ ! -x "$BIN" ]; then
	echo "run.sh: binary '$BIN' is not executable" >&2
	exit 2
fi

if [ $# -gt 0 ]; then
	cases="$*"
else
	cases=$(cd "$HERE" && for d in */; do
		d=${d%/}
		[ -f "$d/input.json" ] && [ -f "$d/upstream.rules" ] && printf '%s\n' "$d"
	done)
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kip-upstream.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT INT TERM
[ -n "${KEEP:-}" ] && mkdir -p "$KEEP"

sortopt=""
[ "$SHORT_MARKS" = "1" ] && sortopt="--short-marks"

pass=0
fail=0
failed=""
for c in $cases; do
	dir="$HERE/$c"
	if [ ! -f "$dir/input.json" ] || [ ! -f "$dir/upstream.rules" ] || [ ! -f "$dir/args" ]; then
		echo "FAIL $c: not a case directory (need input.json, args, upstream.rules)"
		fail=$((fail + 1)); failed="$failed $c"
		continue
	fi
	args=$(cat "$dir/args")
	# Non-upstream relaxations for orders upstream leaves to Go map iteration.
	copts=""
	[ -f "$dir/compare-options" ] && copts=$(cat "$dir/compare-options")
	# shellcheck disable=SC2086 # args is a flag list, word splitting intended
	"$BIN" --dump-rules --from-file "$dir/input.json" $args >"$tmp/out" 2>"$tmp/err"
	rc=$?
	[ -n "${KEEP:-}" ] && cp "$tmp/out" "$KEEP/$c.out"
	if [ $rc -ne 0 ]; then
		echo "FAIL $c: binary exited with status $rc"
		sed 's/^/    /' "$tmp/err" | head -20
		fail=$((fail + 1)); failed="$failed $c"
		continue
	fi
	# shellcheck disable=SC2086
	if ! "$PYTHON" "$SORT" $sortopt $copts "$tmp/out" >"$tmp/got" 2>"$tmp/perr"; then
		echo "FAIL $c: output is not parseable iptables-restore data"
		sed 's/^/    /' "$tmp/perr" | head -5
		fail=$((fail + 1)); failed="$failed $c"
		continue
	fi
	# shellcheck disable=SC2086
	if ! "$PYTHON" "$SORT" $copts "$dir/upstream.rules" >"$tmp/want" 2>"$tmp/perr"; then
		echo "FAIL $c: upstream.rules does not parse (data error)"
		sed 's/^/    /' "$tmp/perr" | head -5
		fail=$((fail + 1)); failed="$failed $c"
		continue
	fi
	if diff -u --label "$c/upstream.rules (sorted)" --label "$c: $BIN --dump-rules (sorted)" \
		"$tmp/want" "$tmp/got" >"$tmp/diff"; then
		echo "ok   $c"
		pass=$((pass + 1))
	else
		echo "FAIL $c"
		cat "$tmp/diff"
		fail=$((fail + 1)); failed="$failed $c"
	fi
done

echo "$pass passed, $fail failed"
[ $fail -eq 0 ] || { echo "failed:$failed"; exit 1; }
exit 0
