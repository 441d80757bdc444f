#!/usr/bin/env bash
# Installs the Debian packages that the tests of other languages need, only those missing: Ruby,
# Go and zip (the examples of docs/runtimes.md, run by tests/e2e/test_runtime_api.py) and the tools
# that build the native part of AWS's Node.js runtime client (aws-lambda-ric). The JDK comes with
# the machine. Quiet and fast when everything is there; `apt-get update` runs only before an install.
set -euo pipefail

PACKAGES=(ruby golang-go zip autoconf automake libtool cmake g++ make)

installed() {
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = "installed" ]
}

missing=()
for package in "${PACKAGES[@]}"; do
  installed "$package" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null; then
  sudo=(sudo -n)
else
  echo "install-toolchains: not root and no sudo; cannot install: ${missing[*]}" >&2
  exit 1
fi

echo "install-toolchains: installing ${missing[*]}"
# Wait for another apt run (a parallel job, unattended upgrades) instead of failing on its lock.
apt=(apt-get -qq -o DPkg::Lock::Timeout=600)
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
# apt's chatter is shown only when it fails.
if ! { "${sudo[@]}" "${apt[@]}" update &&
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y --no-install-recommends "${missing[@]}"; } \
  >"$log" 2>&1; then
  cat "$log" >&2
  echo "install-toolchains: failed to install ${missing[*]}" >&2
  exit 1
fi
echo "install-toolchains: done"
