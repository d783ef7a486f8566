#!/usr/bin/env bash
# Installs the Debian packages that Strait's build and tests need, and only those missing.
#
#   hack/deps.sh              # the packages listed below
#   hack/deps.sh clang llvm   # ... plus extra ones (e.g. for bpf generation)
#
# Safe for CI: non-interactive (CI=true, no stdin) and a no-op, with no apt-get call at all,
# when everything is already installed.
set -euo pipefail

# Packages `make test` needs. gcc and libc6-dev: cgo, which `go test -race` requires.
# Add a package here when a test starts to need it (with a comment saying which test).
PACKAGES=(
  gcc
  libc6-dev
)
PACKAGES+=("$@")

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "deps: not a Debian-based system (no dpkg-query); make sure these are installed: ${PACKAGES[*]}" >&2
  exit 0
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null | grep -qx 'installed'; then
    missing+=("$pkg")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "deps: all ${#PACKAGES[@]} Debian packages present (${PACKAGES[*]})"
  exit 0
fi

echo "deps: installing missing Debian packages: ${missing[*]}"
SUDO=()
if ((EUID != 0)); then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO=(sudo -n)
  else
    echo "deps: need root (or password-less sudo) to install: ${missing[*]}" >&2
    exit 1
  fi
fi

export DEBIAN_FRONTEND=noninteractive
apt_opts=(-q -y -o Dpkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" update </dev/null
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" install --no-install-recommends "${missing[@]}" </dev/null
echo "deps: installed ${missing[*]}"
