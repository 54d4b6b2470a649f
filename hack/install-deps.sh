#!/bin/sh
# Install every Debian package the build, the tests and the benchmarks need.
# Idempotent: packages already installed are left alone; apt-get update runs once
# per day at most (or when a package is missing from the cache).
set -eu

PKGS="
build-essential pkg-config git ca-certificates
libuv1-dev libcurl4-openssl-dev libjansson-dev libyaml-dev libssl-dev
libhttp-parser-dev libnetfilter-conntrack-dev libmnl-dev
iptables conntrack nfacct iproute2 procps psmisc curl openssl
libcmocka-dev clang libclang-rt-14-dev clang-format valgrind
python3-pytest python3-kubernetes python3-yaml
nodejs strace
hyperfine time
"
# kubectl checks the test API server (test/apiserver, test/deploy): Debian's
# kubernetes-client where no kubectl is installed already (another package
# providing /usr/bin/kubectl would conflict with it)
if ! command -v kubectl >/dev/null 2>&1; then
	PKGS="$PKGS kubernetes-client"
fi

if [ "$(id -u)" -ne 0 ]; then
	SUDO=sudo
else
	SUDO=
fi

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done

if [ -z "$missing" ]; then
	echo "install-deps: all packages present"
	exit 0
fi

echo "install-deps: installing:$missing"
stamp=/var/lib/apt/periodic/update-success-stamp
if [ ! -f "$stamp" ] || [ -n "$(find "$stamp" -mmin +1440 2>/dev/null)" ] || \
	! apt-cache show $missing >/dev/null 2>&1; then
	$SUDO apt-get update -qq
fi
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
