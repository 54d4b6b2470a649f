#!/bin/bash
# test/proxy_ct/run.sh - proxy/conntrack.c and proxy/node.c against the real
# kernel. Every case runs in a network namespace of its own that this script
# creates with `ip netns add` and always deletes (trap), so the machine's own
# namespace never sees a rule, sysctl, route or conntrack entry of ours.
# Nothing runs in the background: each command returns before the next.
#
#   test/proxy_ct/run.sh            (root)
#
# Conntrack entries come from real DNATed UDP traffic (iptables-nft nat
# OUTPUT rules in the namespace, datagrams sent out of a veth, so each is
# confirmed before sendto() returns), from `conntrack -I`, and in bulk from
# the driver; UDP timeouts are raised to an hour so nothing expires mid-test.
# The reconciler runs through test/proxy_ct/ct_driver.c, built here with
# ASan+UBSan against the project's objects.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1

[ "$(id -u)" -eq 0 ] || { echo "proxy_ct: needs root (network namespaces)" >&2; exit 1; }

tmp=$(mktemp -d)
ns= # the current case's namespace: one at a time
cleanup() {
	[ -n "$ns" ] && ip netns del "$ns" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- build the driver ------------------------------------------------

BUILD=build/asan
# shellcheck disable=SC2016 # $(...) here is make's, expanded by make
vars=$(make -s --no-print-directory BUILD=$BUILD \
	--eval='kip-ct-vars: ; @: $(info OBJS=$(LIB_OBJ)) $(info FLAGS=$(CSTD) $(WARN) $(WERROR) -I. $(PKG_CFLAGS)) $(info LIBS=$(PKG_LIBS)) $(info SAN=$(ASAN_FLAGS))' \
	kip-ct-vars) || { echo "proxy_ct: cannot read the Makefile" >&2; exit 1; }
OBJS=$(sed -n 's/^OBJS=//p' <<<"$vars")
FLAGS=$(sed -n 's/^FLAGS=//p' <<<"$vars")
LIBS=$(sed -n 's/^LIBS=//p' <<<"$vars")
SAN=$(sed -n 's/^SAN=//p' <<<"$vars")
DRIVER=$BUILD/test/proxy_ct/ct_driver
# Through an archive, the driver links only the modules it uses.
LIB=$BUILD/test/proxy_ct/libkip.a
# shellcheck disable=SC2086 # word splitting of flag lists is intended
if ! make -s BUILD=$BUILD CFLAGS="$SAN" $OBJS ||
	! mkdir -p "$(dirname "$DRIVER")" || ! rm -f "$LIB" || ! ar rcs "$LIB" $OBJS ||
	! ${CC:-cc} $FLAGS $SAN -o "$DRIVER" test/proxy_ct/ct_driver.c "$LIB" $LIBS \
		-fsanitize=address,undefined; then
	echo "proxy_ct: cannot build the driver" >&2
	exit 1
fi
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

# ---- helpers ---------------------------------------------------------

passed=0
failed=0
seq=0
FAILS=()

fail() { FAILS+=("$*"); }

# Run in the case's namespace; a failure is recorded and returned.
nsx() {
	ip netns exec "$ns" "$@" || { fail "command failed: $*"; return 1; }
}

# A namespace with a veth pair whose kip0 end takes everything we send (no
# ARP/ND, so nothing waits for a neighbour; the kip1 end drops it all before
# conntrack sees it): node IPs 10.0.0.10-11 and fd00:10::10, "pods" behind
# 10.244.1.0/24 and fd00:244::/64, service ranges routed to it; conntrack UDP
# timeouts of an hour.
node_ns() {
	nsx ip link set lo up &&
		nsx ip link add kip0 type veth peer name kip1 &&
		nsx ip link set kip0 addrgenmode none arp off &&
		nsx ip link set kip1 addrgenmode none &&
		nsx ip link set kip0 up &&
		nsx ip link set kip1 up &&
		nsx iptables -t raw -A PREROUTING -i kip1 -j DROP &&
		nsx ip6tables -t raw -A PREROUTING -i kip1 -j DROP &&
		nsx ip addr add 10.0.0.10/24 dev kip0 &&
		nsx ip addr add 10.0.0.11/24 dev kip0 &&
		nsx ip addr add 10.244.1.1/24 dev kip0 &&
		nsx ip addr add fd00:10::10/64 dev kip0 nodad &&
		nsx ip addr add fd00:244::1/64 dev kip0 nodad &&
		nsx ip route add 10.96.0.0/16 dev kip0 &&
		nsx ip route add 203.0.113.0/24 dev kip0 &&
		nsx ip route add 198.51.100.0/24 dev kip0 &&
		nsx ip route add fd00:96::/64 dev kip0 &&
		nsx sysctl -qw net.netfilter.nf_conntrack_udp_timeout=3600 &&
		nsx sysctl -qw net.netfilter.nf_conntrack_udp_timeout_stream=3600
}

# udp_flow SPORT DST DPORT TO: DNAT SPORT's datagrams to DST:DPORT towards TO
# (ip:port, [ip6]:port), then send one.
udp_flow() {
	local ipt=iptables
	[[ $2 == *:* ]] && ipt=ip6tables
	nsx $ipt -t nat -A OUTPUT -p udp -d "$2" --dport "$3" --sport "$1" \
		-j DNAT --to-destination "$4" &&
		nsx "$DRIVER" udp-send "$1" "$2" "$3"
}

# Entries whose original source port is SPORT (FAMILY ipv4|ipv6, PROTO udp|tcp).
ct_count() {
	ip netns exec "$ns" conntrack -L -f "$1" -p "$2" 2>/dev/null | grep -c "sport=$3 dport="
}

# expect_flows FAMILY PROTO WANT SPORT...: each flow is there (1) or gone (0).
expect_flows() {
	local fam=$1 proto=$2 want=$3 s got
	shift 3
	for s in "$@"; do
		got=$(ct_count "$fam" "$proto" "$s")
		[ "$got" = "$want" ] || fail "$proto flow from port $s: $got entries, want $want"
	done
}

# reconcile [--async] SPEC_TEXT: run the driver, leave its "k=v ..." in $RESULT.
reconcile() {
	local spec=$tmp/spec.$seq async=()
	[ "$1" = --async ] && { async=(--async); shift; }
	printf '%s\n' "$1" >"$spec"
	RESULT=$(ip netns exec "$ns" "$DRIVER" reconcile "${async[@]}" "$spec" 2>"$tmp/log") ||
		fail "reconcile failed: $RESULT $(tail -3 "$tmp/log")"
}

expect_result() {
	[ "$RESULT" = "$1" ] || fail "reconcile: got \"$RESULT\", want \"$1\""
}

run_case() {
	local name=$1
	shift
	FAILS=()
	seq=$((seq + 1))
	ns=kipct-$$-$seq
	if ! ip netns add "$ns"; then
		echo "FAIL $name: ip netns add $ns"
		ns=
		failed=$((failed + 1))
		return
	fi
	"$@"
	if [ ${#FAILS[@]} -eq 0 ]; then
		echo "ok   $name"
		passed=$((passed + 1))
	else
		echo "FAIL $name"
		printf '       %s\n' "${FAILS[@]}"
		failed=$((failed + 1))
	fi
	ip netns del "$ns" || echo "proxy_ct: cannot delete namespace $ns" >&2
	ns=
}

A4=10.244.1.2:5353 # the removed endpoint
B4=10.244.1.3:5353 # the remaining one

# ---- cases -----------------------------------------------------------

case_clusterip() {
	node_ns || return
	udp_flow 40001 10.96.0.10 53 $A4
	udp_flow 40002 10.96.0.10 53 $A4
	udp_flow 40003 10.96.0.10 53 $B4
	udp_flow 40004 10.96.0.10 54 $A4          # not a service port
	udp_flow 40005 10.96.0.10 53 10.244.1.3:5354 # right IP, wrong port
	nsx conntrack -I -p tcp -s 10.244.1.1 -d 10.96.0.10 --sport 40006 --dport 53 \
		-r 10.244.1.2 -q 10.244.1.1 --reply-port-src 5353 --reply-port-dst 40006 \
		--state ESTABLISHED -t 3600 -u SEEN_REPLY 2>/dev/null
	expect_flows ipv4 udp 1 40001 40002 40003 40004 40005
	expect_flows ipv4 tcp 1 40006
	reconcile "svc udp 10.96.0.10 53 0
ep 10.244.1.3 5353"
	expect_result "examined=6 deleted=3 err=0"
	expect_flows ipv4 udp 0 40001 40002 40005
	expect_flows ipv4 udp 1 40003 40004
	expect_flows ipv4 tcp 1 40006
	# a second pass finds nothing more to delete
	reconcile "svc udp 10.96.0.10 53 0
ep 10.244.1.3 5353"
	expect_result "examined=3 deleted=0 err=0"
}

case_nodeport() {
	node_ns || return
	udp_flow 41001 10.0.0.10 30053 $A4
	udp_flow 41002 10.0.0.10 30053 $B4
	udp_flow 41003 10.0.0.11 30053 $A4 # any node address
	udp_flow 41004 10.0.0.10 30054 $A4 # another port
	udp_flow 41005 10.96.0.10 53 $B4
	reconcile "svc udp 10.96.0.10 53 30053
ep 10.244.1.3 5353"
	expect_result "examined=5 deleted=2 err=0"
	expect_flows ipv4 udp 0 41001 41003
	expect_flows ipv4 udp 1 41002 41004 41005
}

case_lb_external() {
	node_ns || return
	udp_flow 42001 203.0.113.10 53 $A4
	udp_flow 42002 198.51.100.7 53 $A4
	udp_flow 42003 203.0.113.10 53 $B4
	udp_flow 42004 203.0.113.99 53 $A4 # not a frontend
	reconcile "svc udp 10.96.0.10 53 0 lb=203.0.113.10 ext=198.51.100.7
ep 10.244.1.3 5353"
	expect_result "examined=4 deleted=2 err=0"
	expect_flows ipv4 udp 0 42001 42002
	expect_flows ipv4 udp 1 42003 42004
}

case_serving_set() {
	node_ns || return
	udp_flow 43001 10.96.0.10 53 $A4      # service without serving endpoints
	udp_flow 43002 10.96.0.20 53 $A4      # removed
	udp_flow 43003 10.96.0.20 53 10.244.1.4:5353 # serving though terminating
	udp_flow 43004 10.96.0.20 53 10.244.1.5:5353 # not serving
	reconcile "svc udp 10.96.0.10 53 30053
ep 10.244.1.3 5353 notserving
svc udp 10.96.0.20 53 0
ep 10.244.1.3 5353
ep 10.244.1.4 5353 terminating
ep 10.244.1.5 5353 notserving"
	expect_result "examined=4 deleted=2 err=0"
	expect_flows ipv4 udp 0 43002 43004
	expect_flows ipv4 udp 1 43001 43003
}

case_ipv6() {
	node_ns || return
	udp_flow 44001 fd00:96::10 53 '[fd00:244::2]:5353'
	udp_flow 44002 fd00:96::10 53 '[fd00:244::3]:5353'
	udp_flow 44003 fd00:10::10 30053 '[fd00:244::2]:5353'
	udp_flow 44004 10.96.0.10 53 $A4 # IPv4: another family's table
	reconcile "family 6
svc udp fd00:96::10 53 30053
ep fd00:244::3 5353"
	expect_result "examined=3 deleted=2 err=0"
	expect_flows ipv6 udp 0 44001 44003
	expect_flows ipv6 udp 1 44002
	expect_flows ipv4 udp 1 44004
}

# Thousands of entries: a dump over many reads, deletes over many batches,
# through the thread-pool variant.
case_bulk_async() {
	local gone kept
	node_ns || return
	nsx "$DRIVER" ct-create 3000 10.244.1.1 20000 10.96.0.10 53 10.244.1.2 5353 &&
		nsx "$DRIVER" ct-create 3000 10.244.1.1 30000 10.96.0.10 53 10.244.1.3 5353 || return
	reconcile --async "svc udp 10.96.0.10 53 0
ep 10.244.1.3 5353"
	expect_result "examined=6000 deleted=3000 err=0"
	gone=$(ip netns exec "$ns" conntrack -L -p udp -r 10.244.1.2 2>/dev/null | grep -c .)
	kept=$(ip netns exec "$ns" conntrack -L -p udp -r 10.244.1.3 2>/dev/null | grep -c .)
	[ "$gone" = 0 ] || fail "$gone entries to the removed endpoint survived"
	[ "$kept" = 3000 ] || fail "$kept of 3000 entries to the remaining endpoint survived"
}

case_local_addrs() {
	local got want
	# a fresh namespace: lo is down and has no address yet
	got=$(nsx "$DRIVER" local-addrs) || return
	[ -z "$got" ] || fail "fresh namespace: got [$(tr '\n' ' ' <<<"$got")], want nothing"
	nsx ip link set lo up &&
		nsx ip link add kip0 type veth peer name kip1 &&
		nsx ip link set kip0 addrgenmode none &&
		nsx ip link set kip1 addrgenmode none &&
		nsx ip link set kip0 up &&
		nsx ip link set kip1 up &&
		nsx ip addr add 10.0.0.10/24 dev kip0 &&
		nsx ip addr add 10.0.0.10/32 dev kip1 &&
		nsx ip addr add fd00:10::10/64 dev kip0 nodad &&
		nsx ip addr add fe80::1/64 dev kip0 nodad || return
	got=$(nsx "$DRIVER" local-addrs) || return
	want=$(printf '%s\n' 10.0.0.10 127.0.0.1 ::1 fd00:10::10 fe80::1 | LC_ALL=C sort)
	[ "$got" = "$want" ] || fail "got [$(tr '\n' ' ' <<<"$got")], want [$(tr '\n' ' ' <<<"$want")]"
}

case_nfacct() {
	local avail
	nsx ip link set lo up || return
	avail=$(nsx "$DRIVER" nfacct-available) || return
	if [ "$avail" != yes ]; then
		# Without nfnetlink_acct the same rule must be refused.
		nsx iptables -A INPUT -m nfacct --nfacct-name kip-ct-test -j ACCEPT 2>/dev/null &&
			fail "nfacct reported unavailable, but the kernel accepts nfacct rules"
		return
	fi
	if ip netns exec "$ns" iptables -A INPUT -m nfacct --nfacct-name kip-ct-test -j ACCEPT \
		2>/dev/null; then
		fail "an nfacct rule was accepted before the counter existed"
	fi
	nsx "$DRIVER" nfacct-ensure kip-ct-test &&
		nsx "$DRIVER" nfacct-ensure kip-ct-test && # again: already there
		nsx iptables -A INPUT -m nfacct --nfacct-name kip-ct-test -j ACCEPT
}

# The real /proc/sys of the namespace (namespaced knobs written, the global
# nf_conntrack_max refused with a warning) and a fake /sys, so that the
# global hashsize is never written.
case_node_setup() {
	local sys=$tmp/sys cur before_udp before_rln out
	if ip netns exec "$ns" test -w /proc/sys/net/netfilter/nf_conntrack_max; then
		fail "nf_conntrack_max is writable from a namespace here; not risking the global limit"
		return
	fi
	mkdir -p "$sys/module/nf_conntrack/parameters" "$sys/devices/system/cpu"
	echo 1000000000 >"$sys/module/nf_conntrack/parameters/hashsize"
	echo 0-1 >"$sys/devices/system/cpu/online"
	cur=$(ip netns exec "$ns" cat /proc/sys/net/netfilter/nf_conntrack_max)
	before_udp=$(cat /proc/sys/net/netfilter/nf_conntrack_udp_timeout)
	before_rln=$(cat /proc/sys/net/ipv4/conf/all/route_localnet)
	out=$(ip netns exec "$ns" "$DRIVER" node-setup "$sys" max_per_core=1 min=$((cur + 1)) \
		udp_ms=3599000 udp_stream_ms=3598000 established_ms=86399000 be_liberal=1 \
		route_localnet=1 2>"$tmp/log") || fail "node-setup failed: $out $(tail -2 "$tmp/log")"
	[ "$out" = "ret=0 be_liberal=1" ] || fail "node-setup printed \"$out\""
	grep -q 'Cannot modify conntrack limits' "$tmp/log" ||
		fail "no warning about nf_conntrack_max: $(cat "$tmp/log")"
	[ "$(ip netns exec "$ns" sysctl -n net.netfilter.nf_conntrack_udp_timeout)" = 3599 ] ||
		fail "udp timeout not set in the namespace"
	[ "$(ip netns exec "$ns" sysctl -n net.netfilter.nf_conntrack_udp_timeout_stream)" = 3598 ] ||
		fail "udp stream timeout not set in the namespace"
	[ "$(ip netns exec "$ns" sysctl -n net.netfilter.nf_conntrack_tcp_timeout_established)" = 86399 ] ||
		fail "tcp established timeout not set in the namespace"
	[ "$(ip netns exec "$ns" sysctl -n net.ipv4.conf.all.route_localnet)" = 1 ] ||
		fail "route_localnet not set in the namespace"
	[ "$(cat "$sys/module/nf_conntrack/parameters/hashsize")" = 1000000000 ] ||
		fail "hashsize was written"
	[ "$(ip netns exec "$ns" cat /proc/sys/net/netfilter/nf_conntrack_max)" = "$cur" ] ||
		fail "nf_conntrack_max changed"
	if [ "$(cat /proc/sys/net/netfilter/nf_conntrack_udp_timeout)" != "$before_udp" ] ||
		[ "$(cat /proc/sys/net/ipv4/conf/all/route_localnet)" != "$before_rln" ]; then
		fail "the machine's own namespace changed"
	fi
}

run_case "clusterip: stale flows deleted, live, other-port and tcp kept" case_clusterip
run_case "nodeport: any node address, serving endpoint kept" case_nodeport
run_case "load-balancer and external IPs" case_lb_external
run_case "serving set: terminating kept, no serving endpoints skipped" case_serving_set
run_case "ipv6, ipv4 table untouched" case_ipv6
run_case "6000 entries, thread pool" case_bulk_async
run_case "local addresses (link-local included, deduplicated)" case_local_addrs
run_case "nfacct counters" case_nfacct
run_case "node setup in a namespace (global knob refused, namespaced ones set)" case_node_setup

echo "proxy_ct: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
