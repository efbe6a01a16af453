#!/usr/bin/env bash
# Builds the operator and agent-service images with buildah (no daemon, no registry) and exports them
# as OCI archives:
#   hack/build-images.sh      # prints "<tag> <archive>" per image on stdout; logs go to stderr
#   kind load image-archive build/images/agent-service.oci.tar
# With no BASE_IMAGE, the bases are Debian (DEBIAN_SUITE in versions.env) from debootstrap, trimmed and
# cached as tarballs in ~/.cache/shepherd/images/ and as local images; later runs reuse both.
# Env: BASE_IMAGE and BUILDER_IMAGE (e.g. python:3.11-slim where pulls work),
#      IMAGES (default "operator agent-service"),
#      DEBIAN_MIRROR, DEBIAN_SNAPSHOT (e.g. 20251101T000000Z, via snapshot.debian.org),
#      SOURCE_DATE_EPOCH (images; default: the last commit's time), STORAGE_DRIVER (overlay|vfs, default: overlay
#      if it can be mounted here), PYTHON (with pip, for the wheelhouse; default python3).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
source "$here/versions.env"

log() { echo "[build-images] $*" >&2; }
# Root: debootstrap and buildah's chroot isolation need it (rootless buildah would need subuid maps).
[[ $(id -u) -eq 0 ]] || { log "run as root (sudo -E $0): debootstrap and buildah need it"; exit 1; }

missing=()
command -v buildah >/dev/null || missing+=(buildah)
[[ -n ${BASE_IMAGE:-} ]] || command -v debootstrap >/dev/null || missing+=(debootstrap)
if ((${#missing[@]})); then
  log "apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# No daemon: chroot isolation. Storage: overlay where the kernel lets us mount it (fast, layers
# shared), else vfs (works everywhere, but every step copies the whole rootfs). The choice is written
# to build/images/buildah-storage.args so tests and `buildah run` by hand use the same storage.
export BUILDAH_ISOLATION=chroot
out="$root/build/images"
mkdir -p "$out"
driver=${STORAGE_DRIVER:-}
if [[ -z $driver ]]; then
  probe=$(mktemp -d) && mkdir "$probe"/{l,u,w,m}
  if mount -t overlay overlay -o "lowerdir=$probe/l,upperdir=$probe/u,workdir=$probe/w" "$probe/m" 2>/dev/null; then
    umount "$probe/m" && driver=overlay
  else
    driver=vfs
  fi
  rm -rf "$probe"
fi
storage=(--storage-driver "$driver")
[[ $driver == vfs ]] || storage+=(--root "/var/lib/containers/storage-$driver" --runroot "/run/containers/storage-$driver")
printf '%s\n' "${storage[@]}" >"$out/buildah-storage.args"
bh() { buildah "${storage[@]}" "$@"; }

# The one place the version lives: pyproject.toml (the chart's appVersion and the operator match it).
version=$(sed -nE 's/^version = "([^"]+)"/\1/p' "$root/pyproject.toml" | head -1)
revision=$(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct 2>/dev/null || echo 0)}

# --- base images ----------------------------------------------------------------------------------
# One debootstrap gives two images with the same python3: the builder (with binutils, to strip the
# wheels' debug symbols, and pip for the venvs) and the runtime base (no apt, pip, binutils, iconv
# modules). Both are trimmed of what is never read.
trim_rootfs() { # $1: rootfs. The images are rebuilt, never apt-upgraded in place.
  local r=$1
  find "$r/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
  find "$r/usr/share/doc" -mindepth 1 -type d -empty -delete
  find "$r/usr/share/locale" -mindepth 1 -maxdepth 1 -type d -exec rm -rf {} +
  rm -rf "$r"/usr/share/{man,info,lintian}/* "$r"/var/lib/apt/lists/* "$r"/var/cache/apt/* \
    "$r"/var/cache/debconf/*-old "$r"/var/lib/dpkg/*-old "$r"/var/cache/ldconfig/aux-cache
  find "$r/var/log" -type f -delete
  # The images run as 65532 by number; a passwd entry lets tools that look the user up find it.
  grep -q '^nonroot:' "$r/etc/passwd" || echo 'nonroot:x:65532:65532::/tmp:/usr/sbin/nologin' >>"$r/etc/passwd"
  grep -q '^nonroot:' "$r/etc/group" || echo 'nonroot:x:65532:' >>"$r/etc/group"
}
runtime_trim() { # $1: rootfs. The builder keeps these packages; the runtime base does not need them.
  # shellcheck disable=SC2046  # a list of package names
  chroot "$1" dpkg --purge binutils binutils-common "binutils-$(uname -m | tr _ -)-linux-gnu" libbinutils \
    libctf0 libctf-nobfd0 libgprofng0 libjansson4 \
    apt libapt-pkg6.0 gpgv debian-archive-keyring libgnutls30 libhogweed6 libnettle8 libp11-kit0 \
    libtasn1-6 libidn2-0 libunistring2 \
    python3-venv python3.11-venv python3-pip-whl python3-setuptools-whl
  rm -rf "$1"/usr/lib/*/gconv # glibc's iconv modules: Python's codecs never load them
}

import_rootfs() { # $1: tarball, $2: image reference, $3: timestamp (epoch seconds)
  log "importing ${1##*/} as $2"
  local ctr mnt
  ctr=$(bh from --quiet scratch)
  mnt=$(bh mount "$ctr")
  tar -C "$mnt" --numeric-owner -xpf "$1"
  bh umount "$ctr" >/dev/null
  bh config --env LANG=C.UTF-8 --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --cmd /bin/bash --label "org.opencontainers.image.base.name=debian:$DEBIAN_SUITE" "$ctr"
  bh commit --quiet --rm --timestamp "$3" "$ctr" "$2" >/dev/null
}

build_bases() { # sets base and builder (image references)
  local suite=$DEBIAN_SUITE mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
  [[ -n ${DEBIAN_SNAPSHOT:-} ]] && mirror="https://snapshot.debian.org/archive/debian/$DEBIAN_SNAPSHOT"
  local include="python3,python3-venv,binutils"
  # Anything that changes a rootfs changes the key, hence new tarballs and new images.
  local key
  key=$(printf '%s\n' "$suite" "$mirror" "$include" "$(declare -f trim_rootfs runtime_trim)" \
    | sha256sum | cut -c1-12)
  base="localhost/shepherd-base:$suite-$key" builder="localhost/shepherd-builder:$suite-$key"
  if bh inspect --type image "$base" >/dev/null 2>&1 && bh inspect --type image "$builder" >/dev/null 2>&1; then
    log "base images $base, $builder (cached)"
    return
  fi
  local cache="${SHEPHERD_CACHE:-$HOME/.cache/shepherd}/images"
  local tar_base="$cache/base-$suite-$key.tar" tar_builder="$cache/builder-$suite-$key.tar"
  mkdir -p "$cache"
  if [[ ! -f $tar_base || ! -f $tar_builder || ! -f $tar_base.epoch ]]; then
    local rootfs
    rootfs=$(mktemp -d "$cache/rootfs.XXXXXX")
    log "debootstrap --variant=minbase --include=$include $suite $mirror"
    debootstrap --variant=minbase --include="$include" "$suite" "$rootfs" "$mirror" \
      >"$cache/debootstrap.log" 2>&1 || { log "debootstrap failed: $cache/debootstrap.log"; rm -rf "$rootfs"; exit 1; }
    # The bases' timestamp is the suite's release date, not the commit's: same packages, same bases.
    date -d "$(sed -n 's/^Date: //p' "$rootfs"/var/lib/apt/lists/*_Release | head -1)" +%s >"$tar_base.epoch"
    trim_rootfs "$rootfs"
    # Sorted names, numeric owners and clamped mtimes: the same files give the same tarball.
    local tar_opts=(--sort=name --numeric-owner --mtime="@$(<"$tar_base.epoch")" --clamp-mtime
      --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime)
    tar -C "$rootfs" "${tar_opts[@]}" -cf "$tar_builder.tmp" .
    runtime_trim "$rootfs" >>"$cache/debootstrap.log"
    trim_rootfs "$rootfs"
    chroot "$rootfs" dpkg-query -Wf '${Package}=${Version}\n' >"$tar_base.packages"
    tar -C "$rootfs" "${tar_opts[@]}" -cf "$tar_base.tmp" .
    mv "$tar_builder.tmp" "$tar_builder" && mv "$tar_base.tmp" "$tar_base"
    rm -rf "$rootfs"
  fi
  import_rootfs "$tar_builder" "$builder" "$(<"$tar_base.epoch")"
  import_rootfs "$tar_base" "$base" "$(<"$tar_base.epoch")"
}

# --- images ---------------------------------------------------------------------------------------
# Each image's hashed requirement set must be a subset of requirements.lock, pin for pin.
for req in "$root"/images/{operator,agent-service}.requirements.txt; do
  pins='^[a-z0-9._-]+==[^ ]+'
  stray=$(grep -oE "$pins" "$req" | grep -vxFf <(grep -oE "$pins" "$root/requirements.lock") || true)
  [[ -z $stray ]] || { log "$req pins what requirements.lock does not: $stray (run: make images-lock)"; exit 1; }
done

if [[ -n ${BASE_IMAGE:-} ]]; then
  base=$BASE_IMAGE builder=${BUILDER_IMAGE:-$BASE_IMAGE}
else
  build_bases
fi

# The wheelhouse: every pinned wheel, fetched on the host (its network and CA settings) and checked
# against the hashes; the builder stage installs from it with --no-index. Skipped when already complete.
wheelhouse="${SHEPHERD_CACHE:-$HOME/.cache/shepherd}/wheels"
mkdir -p "$wheelhouse"
# Wheels the base's glibc (2.36) can load; pip does not expand manylinux_2_36 to the older tags itself.
arch=$(uname -m) platforms=()
for minor in $(seq 36 -1 5); do platforms+=(--platform "manylinux_2_${minor}_$arch"); done
platforms+=(--platform "manylinux2014_$arch" --platform "manylinux2010_$arch" --platform "manylinux1_$arch")
for req in "$root"/images/{build,operator,agent-service}.requirements.txt; do
  stamp="$wheelhouse/.done-$(sha256sum "$req" | cut -c1-16)"
  [[ -f $stamp ]] && continue
  log "pip download ${req#"$root"/} -> $wheelhouse"
  "${PYTHON:-python3}" -m pip download -q --no-deps --require-hashes --only-binary=:all: --python-version 3.11 \
    "${platforms[@]}" -d "$wheelhouse" -r "$req" >&2
  touch "$stamp"
done

# A minimal context: only what the Containerfiles copy (no .git, .venv, tests, caches).
ctx="$out/context"
rm -rf "$ctx" && mkdir -p "$ctx"
tar -C "$root" --exclude=__pycache__ --exclude='*.pyc' -cf - pyproject.toml README.md \
  operator/shepherd service/agent_service images/*.requirements.txt | tar -C "$ctx" -xf -
cp -al "$wheelhouse" "$ctx/images/wheels" 2>/dev/null || cp -a "$wheelhouse" "$ctx/images/wheels"

# The layer cache makes unchanged steps free with overlay; with vfs every cached step is a full rootfs
# copy (GBs per build), so there each stage is built in one go instead.
layers=true
[[ $driver != vfs ]] || layers=false
for name in ${IMAGES:-operator agent-service}; do
  case $name in
    operator) tag="$IMAGE_REPOSITORY/shepherd-operator:$version" ;;
    agent-service) tag="$IMAGE_REPOSITORY/agent-service:$version" ;;
    *) log "unknown image $name"; exit 1 ;;
  esac
  start=$SECONDS
  log "building $tag on $base"
  bh bud --quiet --layers="$layers" --pull=false --timestamp "$SOURCE_DATE_EPOCH" \
    --build-arg BASE_IMAGE="$base" --build-arg BUILDER_IMAGE="$builder" \
    --build-arg VERSION="$version" --build-arg REVISION="$revision" --build-arg SOURCE="$IMAGE_SOURCE" \
    --build-arg PIP_FLAGS="--no-index --find-links /mnt/images/wheels" \
    -f "$root/images/$name.Containerfile" -t "$tag" "$ctx" >/dev/null
  # kind/containerd name the imported image after the archive's full reference annotation.
  rm -f "$out/$name.oci.tar"
  bh push --quiet "$tag" "oci-archive:$out/$name.oci.tar:$tag" >&2
  log "$tag -> $out/$name.oci.tar ($((SECONDS - start)) s)"
  echo "$tag $out/$name.oci.tar"
done
# Images the new tags replaced: with vfs each is a full rootfs copy, so do not let them pile up.
[[ $driver != vfs ]] || bh rmi --prune >/dev/null
