#!/usr/bin/env bash
# Copies the CRDs that local clusters install into e2e/localcluster/crds, where the
# library embeds them: Gateway API's standard and experimental channels from the
# sigs.k8s.io/gateway-api module in go.mod (it has no Go package embedding them), and
# Strait's own from config/crd/bases. (MCS API's come from sigs.k8s.io/mcs-api/config/crd.)
#
# Run it after bumping sigs.k8s.io/gateway-api or regenerating Strait's CRDs;
# TestEmbeddedCRDsAreCurrent fails until then. Also `go generate ./e2e/localcluster`.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
out=e2e/localcluster/crds
gwapi="$(go list -m -f '{{.Dir}}' sigs.k8s.io/gateway-api)"
if [[ -z "$gwapi" ]]; then
	go mod download sigs.k8s.io/gateway-api
	gwapi="$(go list -m -f '{{.Dir}}' sigs.k8s.io/gateway-api)"
fi

rm -rf "$out"
for channel in standard experimental; do
	mkdir -p "$out/gateway-api/$channel"
	for f in "$gwapi/config/crd/$channel"/*.yaml; do
		[[ $(basename "$f") == kustomization.yaml ]] && continue
		install -m 0644 "$f" "$out/gateway-api/$channel/"
	done
done
mkdir -p "$out/strait"
install -m 0644 config/crd/bases/*.yaml "$out/strait/"
echo "copied $(find "$out" -name '*.yaml' | wc -l) files into $out (Gateway API from $gwapi)"
