#!/bin/bash
# Every test, in order: what `make test` (and so CI) runs. Prints one line per
# suite and a summary; fails if any suite failed. Needs root for the suites
# that use network namespaces (all kernel work happens in namespaces the
# suites create and delete; the machine's own namespace is never touched).
#
#   KIP_QUICK=1  shorter churn and fuzz runs (local iterations)
set -uo pipefail
cd "$(dirname "$0")/.."

results=()
failed=0
PY=/usr/bin/python3
ASAN_CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all"
ASAN_LDFLAGS="-fsanitize=address,undefined"
if [ -n "${KIP_QUICK:-}" ]; then
	export KIP_CHURN_SECONDS=10 FUZZ_SECONDS=5
fi

run() {
	local name=$1
	shift
	local start=$SECONDS
	echo
	echo "=== $name: $*"
	if "$@"; then
		results+=("PASS  $name ($((SECONDS - start))s)")
	else
		results+=("FAIL  $name ($((SECONDS - start))s)")
		failed=$((failed + 1))
	fi
}

example_dump() {
	mkdir -p build
	_output/bin/kube-iptables-proxy --dump-rules --hostname-override=node-a \
		--cluster-cidr=10.244.0.0/16,fd00:10:244::/56 \
		--from-file=hack/examples/cluster.yaml > build/example.rules &&
	_output/bin/kube-iptables-proxy --dump-rules --hostname-override=node-a \
		--cluster-cidr=10.244.0.0/16,fd00:10:244::/56 --service-dispatch=tree \
		--from-file=hack/examples/cluster.yaml > build/example-tree.rules
}

informer_live() {
	make -s BUILD=build/asan CFLAGS="$ASAN_CFLAGS" LDFLAGS="$ASAN_LDFLAGS" \
		build/asan/test/tools/informer-dump && $PY -m pytest -q test/informer &&
	# and the churn once more under valgrind (leaks ASan's LeakSanitizer cannot see)
	make -s BUILD=build/valgrind CFLAGS="-O1 -g" build/valgrind/test/tools/informer-dump &&
	INFORMER_VALGRIND=1 INFORMER_CHURN=1000 $PY -m pytest -q test/informer/test_informer_live.py \
		-k churn
}

run "build (release)" make -s
run "hygiene: headers, purity, format" make -s check-headers check-purity format-check
run "unit and golden tests (ASan+UBSan)" make -s check
run "unit tests under valgrind" make -s valgrind
run "bundled example renders" example_dump
run "upstream kube-proxy test expectations" test/rules/upstream/run.sh
run "test API server against real clients" $PY -m pytest -q test/apiserver
run "informer against the test API server (ASan)" informer_live
run "deployment files: manifests, RBAC, image recipe, operator docs" test/deploy/run.sh
if [ "$(id -u)" -eq 0 ]; then
	run "rule writer outputs load into iptables (nft+legacy, netns)" \
		bash -c 'hack/verify-restore.sh test/rules/cases/*/expected*.rules test/rules/upstream/*/expected.rules build/example*.rules'
	run "conntrack reconciler and node setup (kernel, netns)" test/proxy_ct/run.sh
	run "daemon against real iptables (netns, ASan, valgrind)" $PY -m pytest -q test/daemon
	if [ -x test/e2e/run.sh ]; then
		run "node e2e conformance, iptables-nft" test/e2e/run.sh --backend nft
		run "node e2e conformance core, iptables-legacy" test/e2e/run.sh --backend legacy --core
		run "node e2e conformance, iptables-nft, tree dispatch layout" \
			test/e2e/run.sh --backend nft --dispatch tree
	fi
else
	results+=("SKIP  kernel suites (need root for network namespaces)")
fi
run "fuzz (short)" env FUZZ_SECONDS="${FUZZ_SECONDS:-15}" hack/fuzz.sh

echo
echo "=== summary"
printf '%s\n' "${results[@]}"
echo "$(( ${#results[@]} - failed )) suites passed, $failed failed"
[ "$failed" -eq 0 ]
