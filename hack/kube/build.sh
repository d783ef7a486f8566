#!/usr/bin/env bash
# Builds kube-apiserver and kube-controller-manager (k8s.io/kubernetes) and
# etcd (go.etcd.io/etcd/server/v3), at the versions in go.mod in this
# directory, into a per-version cache directory and prints the absolute paths
# of the three binaries, one per line, in that order, on stdout.
#
# Only missing binaries are built. A cold build takes several minutes
# (~10 min on 2 cores); etcd alone takes about one.
#
# Why etcd is built here rather than taken from Debian: bookworm's etcd-server
# is 3.4.23, older than 3.4.31, the first 3.4 release kube-apiserver trusts with
# watch progress requests. kube-apiserver 1.36 then turns RequestWatchProgress
# off, and every streaming list (client-go's WatchListClient, on by default
# since v0.35) fails with a 500 before the client falls back to LIST. etcd
# 3.6.8 is the version Kubernetes 1.36 is tested with.
#
# Environment:
#   STRAIT_KUBE_BIN_DIR  output directory
#                        (default: ${XDG_CACHE_HOME:-$HOME/.cache}/strait/kube/v1.36.1)
#   STRAIT_KUBE_REBUILD  set to 1 to rebuild even if the binaries exist
set -euo pipefail

KUBE_VERSION=v1.36.1   # keep in sync with k8s.io/kubernetes in go.mod
KUBE_MAJOR=1
KUBE_MINOR=36

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${STRAIT_KUBE_BIN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/strait/kube/${KUBE_VERSION}}"
bins=(kube-apiserver kube-controller-manager etcd)
declare -A pkgs=(
	[kube-apiserver]=k8s.io/kubernetes/cmd/kube-apiserver
	[kube-controller-manager]=k8s.io/kubernetes/cmd/kube-controller-manager
	[etcd]=go.etcd.io/etcd/server/v3
)

missing_bins() {
	missing=()
	for b in "${bins[@]}"; do
		if [[ ! -x "$out/$b" || ${STRAIT_KUBE_REBUILD:-0} == 1 ]]; then
			missing+=("$b")
		fi
	done
}

missing_bins
if ((${#missing[@]} > 0)); then
	mkdir -p "$out"
	# Test packages run in parallel (go test ./...) and may all call this script on a
	# fresh machine: one builds, the others wait for it and then find the binaries.
	if command -v flock >/dev/null; then
		exec 9>"$out/.build.lock"
		flock 9
		missing_bins
	fi
fi

if ((${#missing[@]} > 0)); then
	tmp="$(mktemp -d "$out/.build.XXXXXX")"
	trap 'rm -rf "$tmp"' EXIT

	# Same version stamping as kubernetes' hack/lib/version.sh, so
	# `--version` and /version report the real release instead of v0.0.0-master.
	ldflags="-s -w"
	for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
		ldflags+=" -X ${pkg}.gitVersion=${KUBE_VERSION}"
		ldflags+=" -X ${pkg}.gitMajor=${KUBE_MAJOR}"
		ldflags+=" -X ${pkg}.gitMinor=${KUBE_MINOR}"
		ldflags+=" -X ${pkg}.gitTreeState=clean"
	done

	echo "building ${missing[*]} (kube ${KUBE_VERSION}) into $out (this takes minutes)..." >&2
	start=$SECONDS
	for b in "${missing[@]}"; do
		# Upstream builds these binaries statically (KUBE_STATIC_BINARIES, etcd's build.sh).
		(cd "$here" && CGO_ENABLED=0 GOWORK=off GOFLAGS="${GOFLAGS:-} -mod=readonly" \
			go build -trimpath -ldflags "$ldflags" -o "$tmp/$b" "${pkgs[$b]}")
	done
	for b in "${missing[@]}"; do
		mv -f "$tmp/$b" "$out/$b"
	done
	echo "built in $((SECONDS - start))s" >&2
fi

for b in "${bins[@]}"; do
	echo "$out/$b"
done
