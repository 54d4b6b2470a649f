#!/bin/bash
# The node-e2e suite on one iptables backend: a sandboxed cluster of network
# namespaces, one kube-iptables-proxy per node, conformance and sig-network
# behaviours checked with real traffic. Needs root. See test/e2e/README.md.
#
#   test/e2e/run.sh [--backend nft|legacy] [--dispatch linear|tree|auto] [--core]
#                   [extra pytest args, e.g. -k affinity]
#
# --core runs the subset marked "core" (what make test runs on iptables-legacy).
# Everything is torn down on exit, even on failure or Ctrl-C; the run fails if
# a namespace of its own is left behind. Evidence of failures (iptables-save -c,
# conntrack, daemon logs) is kept under _output/e2e/<backend>/.
#
# Environment: KIP_BIN (the daemon binary, default _output/bin/kube-iptables-proxy,
# built if missing), KIP_E2E_TIMEOUT (seconds for the whole run, default 900).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2

backend=nft
dispatch=auto
core=
while [ $# -gt 0 ]; do
	case $1 in
	--backend) backend=${2:-}; shift 2 ;;
	--backend=*) backend=${1#--backend=}; shift ;;
	--dispatch) dispatch=${2:-}; shift 2 ;;
	--dispatch=*) dispatch=${1#--dispatch=}; shift ;;
	--core) core=1; shift ;;
	-h|--help) sed -n '2,16p' "$0"; exit 0 ;;
	--) shift; break ;;
	*) break ;;
	esac
done
case $backend in
nft|legacy) ;;
*) echo "run.sh: --backend must be nft or legacy" >&2; exit 2 ;;
esac
case $dispatch in
linear|tree|auto) ;;
*) echo "run.sh: --dispatch must be linear, tree or auto" >&2; exit 2 ;;
esac
if [ "$(id -u)" -ne 0 ]; then
	echo "run.sh: the node e2e suite needs root (network namespaces)" >&2
	exit 2
fi
PY=/usr/bin/python3
BIN=${KIP_BIN:-_output/bin/kube-iptables-proxy}
if [ ! -x "$BIN" ]; then
	make -s || exit 1
fi

prefix="kipe2e-$$-"
export KIP_E2E_PREFIX=$prefix
cleanup() {
	# the suite tears down after itself; this catches a killed pytest
	$PY hack/sandbox/cluster.py clean --prefix "$prefix" >/dev/null 2>&1
}
child=
# shellcheck disable=SC2317  # invoked by the trap
stop() {
	# SIGTERM makes pytest tear the sandbox down (conftest.py); give it time
	if [ -n "$child" ]; then
		kill -TERM "$child" 2>/dev/null
		wait "$child"
	fi
	exit 130
}
trap cleanup EXIT
trap stop INT TERM

start=$SECONDS
echo "node-e2e: backend=$backend dispatch=$dispatch${core:+ (core)} prefix=$prefix"
# in the background so that a signal to this script is handed on at once
timeout --kill-after=30 "${KIP_E2E_TIMEOUT:-900}" \
	$PY -m pytest test/e2e -p no:cacheprovider -q -rfE --backend "$backend" --dispatch "$dispatch" \
	${core:+-m core} "$@" &
child=$!
wait "$child"
rc=$?
child=
cleanup
left=$(ip netns list | awk '{print $1}' | grep "^$prefix" || true)
if [ -n "$left" ]; then
	echo "run.sh: namespaces left behind: $left" >&2
	rc=1
fi
echo "node-e2e: backend=$backend dispatch=$dispatch${core:+ (core)} finished in $((SECONDS - start))s, exit $rc"
exit $rc
