#!/bin/bash
# chroot.sh BINARY PACKAGE... - what hack/deploy/Containerfile's runtime stage
# does, without a container engine: debootstrap a minimal Debian 12 root (the
# same Essential+apt set as debian:12-slim), apt-get install the runtime
# packages into it, copy the binary in, and check that it and the programs
# it runs work there, and that no compiler came along.
#
# Run by `KIP_DEPLOY_CHROOT=1 test/deploy/run.sh image-chroot`. Needs root,
# debootstrap and the Debian mirror ($KIP_DEBIAN_MIRROR, default
# http://deb.debian.org/debian); a few minutes. The root is made under
# $TMPDIR (default /var/tmp) and removed at the end.
set -euo pipefail
bin=$1
shift
mirror=${KIP_DEBIAN_MIRROR:-http://deb.debian.org/debian}
here=$(cd "$(dirname "$0")" && pwd)
root=$(mktemp -d "${TMPDIR:-/var/tmp}/kip-chroot.XXXXXX")

cleanup() {
	mountpoint -q "$root/proc" && umount "$root/proc"
	rm -rf --one-file-system "$root"
}
trap cleanup EXIT

step() { echo "chroot: $*"; }
in_root() { chroot "$root" env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"; }

step "debootstrap --variant=minbase bookworm ($mirror)"
debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.log" 2>&1 || {
	tail -20 "$root.log" >&2
	rm -f "$root.log"
	exit 1
}
rm -f "$root.log"
mount -t proc proc "$root/proc"

step "apt-get install --no-install-recommends $*"
apt_opts=(-o APT::Sandbox::User=root -o Dpkg::Use-Pty=0)
in_root apt-get "${apt_opts[@]}" update -qq
in_root env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" install -y -qq \
	--no-install-recommends "$@" >/dev/null 2>"$root/tmp/apt.err" || {
	cat "$root/tmp/apt.err" >&2
	exit 1
}
# as the Containerfile's RUN does: no package lists or archives left
in_root apt-get clean
rm -rf "$root"/var/lib/apt/lists/*

install -m 0755 "$bin" "$root/usr/local/bin/kube-iptables-proxy"
ln -s kube-iptables-proxy "$root/usr/local/bin/kube-proxy"

step "ldd: every library found"
if in_root ldd /usr/local/bin/kube-iptables-proxy | grep 'not found'; then
	echo "chroot: missing libraries" >&2
	exit 1
fi

step "the binary runs"
in_root /usr/local/bin/kube-iptables-proxy --version
in_root /usr/local/bin/kube-proxy --help >/dev/null
cp "$here/../../hack/examples/cluster.yaml" "$root/tmp/cluster.yaml"
in_root /usr/local/bin/kube-iptables-proxy --dump-rules --hostname-override=node-a \
	--cluster-cidr=10.244.0.0/16,fd00:10:244::/56 --from-file=/tmp/cluster.yaml >/dev/null

step "the programs it runs are there"
for ip in iptables ip6tables; do
	for be in nft legacy; do
		for sfx in "" -save -restore; do
			in_root "$ip-$be$sfx" --version >/dev/null
		done
	done
done
in_root conntrack --version >/dev/null
in_root nfacct version >/dev/null 2>&1 || in_root sh -c 'command -v nfacct' >/dev/null

step "no compiler or -dev package"
if in_root dpkg-query -W -f '${Package}\n' | grep -E '^(gcc|gcc-[0-9]+|cpp|cpp-[0-9]+|make|binutils.*|.*-dev)$'; then
	echo "chroot: build packages in the runtime root" >&2
	exit 1
fi
step "ok: the runtime root is $(du -sm --exclude=proc --exclude=tmp "$root" | cut -f1) MiB"
