#!/bin/bash
# Load iptables-restore documents for real, with both backends, into throwaway
# network namespaces (unshare -n: the namespace dies with the command), and
# check that every rule arrived. Never touches the machine's own namespace.
#
#   hack/verify-restore.sh FILE...
#
# A FILE may hold "# IPv4: ..." and "# IPv6: ..." sections (--dump-rules with
# both families); each goes to iptables-restore or ip6tables-restore.
set -euo pipefail

[ "$(id -u)" -eq 0 ] || { echo "verify-restore: needs root (network namespaces)" >&2; exit 1; }
[ $# -gt 0 ] || { echo "usage: $0 FILE..." >&2; exit 2; }

# The canonical comparison (rules/canon.c), built by the Makefile.
CANON_CMP=${CANON_CMP:-build/release/test/tools/canon-cmp}
make -s "$CANON_CMP" >/dev/null || { echo "verify-restore: cannot build $CANON_CMP" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Upstream adds nfacct matches when it could create its two counters; create
# them in each namespace as kube-proxy does (nfacct is per network namespace).
counters="nfacct add ct_state_invalid_dropped_pkts >/dev/null; nfacct add localhost_nps_accepted_pkts >/dev/null;"

fail=0
n=0
for f in "$@"; do
	# split into families
	awk -v v4="$tmp/v4" -v v6="$tmp/v6" '
		BEGIN { out = v4; printf "" > v4; printf "" > v6 }
		/^# IPv6:/ { out = v6 }
		/^# IPv4:/ { out = v4 }
		{ print > out }' "$f"
	for fam in 4 6; do
		doc="$tmp/v$fam"
		grep -q '^\*' "$doc" || continue
		want=$(grep -c '^-A ' "$doc" || true)
		prefix=iptables
		[ "$fam" = 6 ] && prefix=ip6tables
		for backend in nft legacy; do
			n=$((n + 1))
			if ! out=$(unshare -n sh -c "
				set -e
				$counters
				$prefix-$backend-restore --test --noflush < '$doc'
				$prefix-$backend-restore -w 5 -W 100000 --noflush --counters < '$doc'
				$prefix-$backend-save > '$tmp/saved'
				cat '$tmp/saved'" 2>&1); then
				echo "FAIL $f (IPv$fam, $backend): restore rejected it:" >&2
				echo "$out" | tail -5 >&2
				fail=$((fail + 1))
				continue
			fi
			got=$(grep -c '^-A ' "$tmp/saved" || true)
			if [ "$got" != "$want" ]; then
				echo "FAIL $f (IPv$fam, $backend): wrote $want rules, kernel has $got" >&2
				fail=$((fail + 1))
				continue
			fi
			# and that iptables-save gives back what we wrote, in the canonical
			# form the reconciler compares with to adopt chains (rules/canon.h)
			if ! cmp=$("$CANON_CMP" "$doc" "$tmp/saved"); then
				echo "FAIL $f (IPv$fam, $backend): the kernel's rules differ from what was written once canonical:" >&2
				echo "$cmp" | head -20 >&2
				fail=$((fail + 1))
				continue
			fi
			echo "ok   $f (IPv$fam, $backend): $want rules, canonical forms equal"
		done
	done
done
echo "verify-restore: $((n - fail)) passed, $fail failed"
[ "$fail" -eq 0 ]
