#!/usr/bin/env bash
# Builds the local control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
# kwok) and controller-gen from Go modules into a cache outside the repository, then generates the
# upstream third-party CRDs Shepherd writes to. Skips whatever is already cached.
#
#   hack/build-binaries.sh            # prints the cache dir on the last line
#
# Binaries already on hand are used instead: KUBEBUILDER_ASSETS (a dir holding etcd and
# kube-apiserver, as envtest lays it out) is honoured by the test harness, not here.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"

key="k8s-${KUBERNETES_VERSION}_etcd-${ETCD_VERSION}_kwok-${KWOK_VERSION}_ct-${CONTROLLER_TOOLS_VERSION}_po-${PROMETHEUS_OPERATOR_VERSION}_keda-${KEDA_VERSION}"
cache="${SHEPHERD_CACHE:-$HOME/.cache/shepherd}/$key"
bin="$cache/bin"
crds="$cache/crds"
mkdir -p "$bin" "$crds"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0

log() { printf '[build-binaries] %s\n' "$*" >&2; }

# A throwaway module that requires $1@$2 and builds package paths into $bin.
build_from_module() {
  local module=$1 version=$2; shift 2
  local dir="$work/$(echo "$module" | tr '/.' '__')"
  mkdir -p "$dir"
  (cd "$dir" && go mod init shepherd.local/build >/dev/null 2>&1 && go get "$module@$version" >&2)
  echo "$dir"
}

build_kubernetes() {
  local missing=0
  for b in kube-apiserver kube-controller-manager kube-scheduler; do [[ -x "$bin/$b" ]] || missing=1; done
  ((missing)) || return 0
  log "building kubernetes $KUBERNETES_VERSION (kube-apiserver, kube-controller-manager, kube-scheduler)"
  local dir="$work/kubernetes" staging_version="v0.${KUBERNETES_VERSION#v1.}"
  local minor="${staging_version#v0.}"; minor="${minor%%.*}"
  mkdir -p "$dir" && cd "$dir"
  go mod init shepherd.local/build >/dev/null 2>&1
  local gomod
  gomod=$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  # k8s.io/kubernetes points its staging modules at ./staging; as a dependency they must be pinned.
  { echo "require k8s.io/kubernetes $KUBERNETES_VERSION"; echo "replace ("
    grep -oE '^\s*k8s\.io/[a-z0-9-]+ => \./staging' "$gomod" | awk -v v="$staging_version" '{print "\t" $1 " => " $1 " " v}'
    echo ")"; } >> go.mod
  for b in kube-apiserver kube-controller-manager kube-scheduler; do
    go build -trimpath -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$KUBERNETES_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor" \
      -o "$bin/$b" "k8s.io/kubernetes/cmd/$b"
    log "built $b"
  done
  cd - >/dev/null
}

build_etcd() {
  [[ -x "$bin/etcd" ]] && return 0
  log "building etcd $ETCD_VERSION"
  local dir; dir=$(build_from_module go.etcd.io/etcd/server/v3 "$ETCD_VERSION")
  (cd "$dir" && go build -trimpath -ldflags "-s -w" -o "$bin/etcd" go.etcd.io/etcd/server/v3)
}

build_kwok() {
  [[ -x "$bin/kwok" ]] && return 0
  log "building kwok $KWOK_VERSION"
  GOBIN="$bin" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
}

# kwok ships its standard stages (node heartbeat, pod ready/complete/delete) as YAML in its module;
# the standalone binary needs them as config, as kwokctl passes them.
copy_kwok_stages() {
  [[ -f "$cache/kwok-stages.yaml" ]] && return 0
  local src; src="$(go env GOMODCACHE)/sigs.k8s.io/kwok@$KWOK_VERSION/kustomize/stage"
  [[ -d "$src" ]] || go mod download "sigs.k8s.io/kwok@$KWOK_VERSION"
  for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
           pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
    echo "---"; cat "$src/$f"
  done > "$cache/kwok-stages.yaml.tmp"
  mv "$cache/kwok-stages.yaml.tmp" "$cache/kwok-stages.yaml"
}

build_controller_gen() {
  [[ -x "$bin/controller-gen" ]] && return 0
  log "building controller-gen $CONTROLLER_TOOLS_VERSION"
  GOBIN="$bin" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/controller-tools/cmd/controller-gen@$CONTROLLER_TOOLS_VERSION"
}

# Upstream CRDs, generated from the upstream Go API types exactly as their projects do.
generate_crds() {
  local module=$1 version=$2 package=$3 marker=$4
  [[ -f "$crds/$marker" ]] && return 0
  log "generating CRDs from $package@$version"
  local dir; dir=$(build_from_module "$module" "$version")
  local out="$work/out-$marker"
  (cd "$dir" && go mod download all >/dev/null 2>&1 || true
   src=$(go list -m -json "$module" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
   "$bin/controller-gen" crd:allowDangerousTypes=true,maxDescLen=0 paths="$src/$package/..." output:crd:dir="$out" >&2)
  cp "$out"/*.yaml "$crds/"
  touch "$crds/$marker"
}

build_etcd
build_kwok
copy_kwok_stages
build_controller_gen
generate_crds github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring "$PROMETHEUS_OPERATOR_VERSION" v1 monitoring.done
generate_crds github.com/kedacore/keda/v2 "$KEDA_VERSION" apis/keda/v1alpha1 keda.done
build_kubernetes
echo "$cache"
