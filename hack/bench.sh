#!/bin/bash
# Benchmarks (`make bench`): prints markdown tables and records them in
# hack/bench/RESULTS.md. Figures, never assertions. Needs root: everything that
# touches the kernel runs in throwaway network namespaces (deleted on every exit
# path; the machine's own namespace, rules, sysctls and routes are never touched).
#
#   BENCH_QUICK=1      100 and 1k services, short churn, bare single-transaction
#                      nft restore only at 100 (under 2 minutes)
#   BENCH_PHASES=...   a subset of render,full,dataplane,churn,txn
#   BENCH_SET="k=v ..." override a setting of hack/bench/bench.py's MODES (JSON values)
#   BENCH_RECORD=0     do not touch hack/bench/RESULTS.md (default: full runs are
#                      recorded, quick runs are not)
#
# Generated clusters, dumps, logs and helper binaries go to hack/bench/out/
# (ignored by git); the raw figures of the last run to hack/bench/out/last.json.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=/usr/bin/python3
BIN=_output/bin/kube-iptables-proxy
OUT=hack/bench/out
MODE=full
[ -n "${BENCH_QUICK:-}" ] && [ "${BENCH_QUICK}" != 0 ] && MODE=quick
# 0: a cluster without services (the dataplane baseline)
# (250 and 500: the dataplane's small sizes, where the auto dispatch threshold is chosen;
# 2000: the nft transaction-size table)
if [ "$MODE" = full ]; then SIZES="0 100 250 500 1000 2000 5000 10000 20000"; else SIZES="0 100 1000"; fi
RECORD=${BENCH_RECORD:-$([ "$MODE" = full ] && echo 1 || echo 0)}

if [ "$(id -u)" -ne 0 ]; then
	echo "bench: needs root (network namespaces)" >&2
	exit 1
fi
[ -x "$BIN" ] || make -s "$BIN"
start=$SECONDS
mkdir -p "$OUT/shim" "$OUT/logs"
rm -f "$OUT"/logs/*

# helpers: the connect-rate client/server and the iptables timing shim
cc -O2 -Wall -Wextra -o "$OUT/connrate" hack/bench/connrate.c
cc -O2 -Wall -Wextra -o "$OUT/shim/iptwrap" hack/bench/iptwrap.c
for t in iptables-nft iptables-nft-save iptables-nft-restore \
	iptables-legacy iptables-legacy-save iptables-legacy-restore; do
	ln -sf iptwrap "$OUT/shim/$t"
done

# the clusters (deterministic: regenerated only when the generator changed)
for n in $SIZES; do
	f="$OUT/cluster-$n.json"
	if [ ! -s "$f" ] || [ hack/bench/gen.py -nt "$f" ]; then
		echo "bench: generating $n services x 10 endpoints" >&2
		$PY hack/bench/gen.py --services "$n" --endpoints 10 --seed 1 -o "$f"
	fi
done

# Leftovers of a driver killed outright: its namespaces are named kipb-<pid>-*.
# Processes inside are ours (the driver started them); kill them by pid first.
driver=
cleanup() {
	local ns pid
	if [ -n "$driver" ] && kill -0 "$driver" 2>/dev/null; then
		kill -TERM "$driver" 2>/dev/null || true
		wait "$driver" 2>/dev/null || true
	fi
	[ -n "$driver" ] || return 0
	for ns in $(ip netns list | awk '{print $1}' | grep "^kipb-$driver-" || true); do
		for pid in $(ip netns pids "$ns" 2>/dev/null); do
			kill -KILL "$pid" 2>/dev/null || true
		done
		ip netns del "$ns" 2>/dev/null || true
	done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

sets=()
for kv in ${BENCH_SET:-}; do sets+=(--set "$kv"); done
$PY hack/bench/bench.py --mode "$MODE" --fixtures "$OUT" --out "$OUT" --json "$OUT/last.json" \
	--phases "${BENCH_PHASES:-render,full,dataplane,churn,txn}" ${sets[@]+"${sets[@]}"} &
driver=$!
rc=0
wait "$driver" || rc=$?
if [ "$rc" -ne 0 ]; then
	echo "bench: the driver failed (exit $rc); logs in $OUT/logs" >&2
	exit "$rc"
fi

cmd="make bench"
[ "$MODE" = quick ] && cmd="BENCH_QUICK=1 make bench"
[ -n "${BENCH_PHASES:-}${BENCH_SET:-}" ] && cmd="BENCH_PHASES='${BENCH_PHASES:-}' BENCH_SET='${BENCH_SET:-}' $cmd"
$PY hack/bench/report.py --json "$OUT/last.json" --command "$cmd" --wall $((SECONDS - start)) \
	> "$OUT/last.md"
cat "$OUT/last.md"
if [ "$RECORD" = 1 ]; then
	$PY hack/bench/report.py --record hack/bench/RESULTS.md --run "$OUT/last.md"
	echo "bench: recorded in hack/bench/RESULTS.md" >&2
fi
