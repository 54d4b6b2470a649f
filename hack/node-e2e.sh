#!/bin/bash
# node-e2e: kube-iptables-proxy on a sandboxed cluster made of network
# namespaces (nodes, pods, an external client, a control plane with the test
# API server), checked with real traffic. Needs root; touches nothing outside
# the namespaces it creates, and removes them all on exit.
#
#   hack/node-e2e.sh [run] [--backend nft|legacy|all] [--core] [pytest args]
#        run the suite; the default, "all", is iptables-nft in full and then the
#        core subset on iptables-legacy (what `make test` runs)
#   hack/node-e2e.sh up [--backend nft|legacy] [--nodes N] [--hold SECONDS]
#        build a sandbox with a demo service and keep it until Ctrl-C, to poke at
#        (it prints the namespaces and example commands)
#   hack/node-e2e.sh clean [--prefix kipe2e-PID-]
#        delete namespaces left by runs that were killed (SIGKILL skips cleanup)
#
# Details: test/e2e/README.md.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
PY=/usr/bin/python3

cmd=run
case ${1:-} in
run|up|clean) cmd=$1; shift ;;
-h|--help) sed -n '2,17p' "$0"; exit 0 ;;
esac

if [ "$(id -u)" -ne 0 ]; then
	echo "node-e2e: needs root (network namespaces)" >&2
	exit 2
fi

case $cmd in
up)
	[ -x "${KIP_BIN:-_output/bin/kube-iptables-proxy}" ] || make -s || exit 1
	exec $PY hack/sandbox/cluster.py up "$@"
	;;
clean)
	exec $PY hack/sandbox/cluster.py clean "$@"
	;;
esac

backend=all
core=
args=()
while [ $# -gt 0 ]; do
	case $1 in
	--backend) backend=${2:-}; shift 2 ;;
	--backend=*) backend=${1#--backend=}; shift ;;
	--core) core=--core; shift ;;
	*) args+=("$1"); shift ;;
	esac
done

start=$SECONDS
results=()
failed=0
one() {
	local t=$SECONDS
	if test/e2e/run.sh "$@" "${args[@]}"; then
		results+=("PASS  node-e2e $* ($((SECONDS - t))s)")
	else
		results+=("FAIL  node-e2e $* ($((SECONDS - t))s)")
		failed=$((failed + 1))
	fi
}
case $backend in
all)
	one --backend nft $core
	one --backend legacy --core
	;;
nft|legacy)
	one --backend "$backend" $core
	;;
*)
	echo "node-e2e: --backend must be nft, legacy or all" >&2
	exit 2
	;;
esac
echo
printf '%s\n' "${results[@]}"
echo "node-e2e: $(( ${#results[@]} - failed )) runs passed, $failed failed in $((SECONDS - start))s"
[ "$failed" -eq 0 ]
