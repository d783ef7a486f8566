#!/usr/bin/env bash
# Builds kube-apiserver and kube-controller-manager (k8s.io/kubernetes, see
# go.mod in this directory) into a per-version cache directory and prints the
# absolute paths of the two binaries, one per line, on stdout.
#
# The build is skipped when both binaries already exist in the cache. A cold
# build takes several minutes (~8 min on 2 cores).
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
bins=(kube-apiserver kube-controller-manager)

have_all=1
for b in "${bins[@]}"; do
	[[ -x "$out/$b" ]] || have_all=0
done

if [[ $have_all == 0 || ${STRAIT_KUBE_REBUILD:-0} == 1 ]]; then
	mkdir -p "$out"
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

	echo "building ${bins[*]} ${KUBE_VERSION} into $out (this takes several minutes)..." >&2
	start=$SECONDS
	for b in "${bins[@]}"; do
		# Upstream builds these two binaries statically (KUBE_STATIC_BINARIES).
		(cd "$here" && CGO_ENABLED=0 GOWORK=off GOFLAGS="${GOFLAGS:-} -mod=readonly" \
			go build -trimpath -ldflags "$ldflags" -o "$tmp/$b" "k8s.io/kubernetes/cmd/$b")
	done
	for b in "${bins[@]}"; do
		mv -f "$tmp/$b" "$out/$b"
	done
	echo "built in $((SECONDS - start))s" >&2
fi

for b in "${bins[@]}"; do
	echo "$out/$b"
done
