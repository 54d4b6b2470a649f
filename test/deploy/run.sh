#!/bin/bash
# Checks of hack/deploy: manifests (kubectl dry-run against the test API
# server, schema, RBAC, cross-references), the image recipe (ldd coverage,
# package lists), and the operator docs (--help, --man, README agree).
# One line per check (ok / FAIL / skip), then a summary; exits 1 if any failed.
# No network, no cluster; well under a minute.
#
#   test/deploy/run.sh [CHECK...]          all checks, or the named ones
#   KIP_DEPLOY_CHROOT=1 test/deploy/run.sh  also install the runtime packages
#                                           into a debootstrapped Debian 12 root
#                                           (needs root, debootstrap, the Debian
#                                           mirror; a few minutes)
#   KIP_BIN=path                            the binary to check (default: make's)
set -uo pipefail
cd "$(dirname "$0")/../.."

PY=/usr/bin/python3
if [ -z "${KIP_BIN:-}" ]; then
	make -s >/dev/null || { echo "FAIL  build (make)"; echo "deploy: 0 passed, 1 failed"; exit 1; }
fi

if [ $# -gt 0 ]; then
	checks=("$@")
else
	mapfile -t checks < <($PY test/deploy/checks.py list)
fi

passed=0 failed=0 skipped=0
for c in "${checks[@]}"; do
	start=$SECONDS
	out=$($PY test/deploy/checks.py "$c" 2>&1)
	rc=$?
	t="($((SECONDS - start))s)"
	case $rc in
	0)
		echo "ok    $c $t"
		passed=$((passed + 1))
		;;
	77)
		echo "skip  $c: ${out#skipped: }"
		skipped=$((skipped + 1))
		;;
	*)
		echo "FAIL  $c $t"
		[ -n "$out" ] && printf '%s\n' "$out" | sed 's/^/      /'
		failed=$((failed + 1))
		;;
	esac
done
echo "deploy: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
