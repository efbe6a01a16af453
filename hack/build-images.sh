#!/usr/bin/env bash
# Builds the operator and agent-service images with buildah (no daemon, no registry) and exports them
# as OCI archives:
#   hack/build-images.sh      # prints "<tag> <archive>" per image on stdout; logs go to stderr
#   kind load image-archive build/images/agent-service.oci.tar
# With no BASE_IMAGE, the bases are Debian (DEBIAN_SUITE in versions.env) from debootstrap, trimmed and
# cached as tarballs in ~/.cache/shepherd/images/ and as local images; later runs reuse both.
# Env: BASE_IMAGE and BUILDER_IMAGE (e.g. python:3.11-slim where pulls work), IMAGES (default "operator agent-service"),
#      DEBIAN_MIRROR, DEBIAN_SNAPSHOT (e.g. 20251101T000000Z, via snapshot.debian.org),
#      SOURCE_DATE_EPOCH (default: the last commit's time), STORAGE_DRIVER (default vfs).
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

# No daemon and no overlay mounts in these sandboxes: chroot isolation, vfs storage.
export BUILDAH_ISOLATION=chroot
bh() { buildah --storage-driver "${STORAGE_DRIVER:-vfs}" "$@"; }

version=$("${PYTHON:-python3}" -c 'import tomllib; print(tomllib.load(open("'"$root"'/pyproject.toml", "rb"))["project"]["version"])')
revision=$(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct 2>/dev/null || echo 0)}
out="$root/build/images"
mkdir -p "$out"

# --- base images ----------------------------------------------------------------------------------
# One debootstrap gives two images with the same python3: the builder (with binutils, to strip the
# wheels' debug symbols) and the runtime base (without). Both are trimmed of what is never read.
trim_rootfs() { # $1: rootfs. The images are rebuilt, never apt-upgraded in place.
  local r=$1
  find "$r/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
  find "$r/usr/share/doc" -mindepth 1 -type d -empty -delete
  find "$r/usr/share/locale" -mindepth 1 -maxdepth 1 -type d -exec rm -rf {} +
  rm -rf "$r"/usr/share/{man,info,lintian}/* "$r"/var/lib/apt/lists/* "$r"/var/cache/apt/* \
    "$r"/var/cache/debconf/*-old "$r"/var/lib/dpkg/*-old "$r"/var/cache/ldconfig/aux-cache
  find "$r/var/log" -type f -delete
  # The images run as 65532 by number; a passwd entry lets tools that look the user up find it.
  grep -q '^nonroot:' "$r/etc/passwd" || echo 'nonroot:x:65532:65532:nonroot:/tmp:/usr/sbin/nologin' >>"$r/etc/passwd"
  grep -q '^nonroot:' "$r/etc/group" || echo 'nonroot:x:65532:' >>"$r/etc/group"
}
build_only_packages() { # installed in the builder only
  echo binutils binutils-common "binutils-$(uname -m | tr _ -)-linux-gnu" libbinutils libctf0 libctf-nobfd0 \
    libgprofng0 libjansson4
}

import_rootfs() { # $1: tarball, $2: image reference
  log "importing ${1##*/} as $2"
  local ctr mnt
  ctr=$(bh from --quiet scratch)
  mnt=$(bh mount "$ctr")
  tar -C "$mnt" --numeric-owner -xpf "$1"
  bh umount "$ctr" >/dev/null
  bh config --env LANG=C.UTF-8 --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --cmd /bin/bash --label "org.opencontainers.image.base.name=debian:$DEBIAN_SUITE" "$ctr"
  bh commit --quiet --rm --timestamp "$SOURCE_DATE_EPOCH" "$ctr" "$2" >/dev/null
}

build_bases() { # sets base and builder (image references)
  local suite=$DEBIAN_SUITE mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
  [[ -n ${DEBIAN_SNAPSHOT:-} ]] && mirror="https://snapshot.debian.org/archive/debian/$DEBIAN_SNAPSHOT"
  local include="python3,python3-venv,binutils"
  # Anything that changes a rootfs changes the key, hence new tarballs and new images.
  local key
  key=$(printf '%s\n' "$suite" "$mirror" "$include" "$(declare -f trim_rootfs build_only_packages)" \
    | sha256sum | cut -c1-12)
  base="localhost/shepherd-base:$suite-$key" builder="localhost/shepherd-builder:$suite-$key"
  if bh inspect --type image "$base" >/dev/null 2>&1 && bh inspect --type image "$builder" >/dev/null 2>&1; then
    log "base images $base, $builder (cached)"
    return
  fi
  local cache="${SHEPHERD_CACHE:-$HOME/.cache/shepherd}/images"
  local tar_base="$cache/base-$suite-$key.tar" tar_builder="$cache/builder-$suite-$key.tar"
  mkdir -p "$cache"
  if [[ ! -f $tar_base || ! -f $tar_builder ]]; then
    local rootfs
    rootfs=$(mktemp -d "$cache/rootfs.XXXXXX")
    log "debootstrap --variant=minbase --include=$include $suite $mirror"
    debootstrap --variant=minbase --include="$include" "$suite" "$rootfs" "$mirror" >"$cache/debootstrap.log" 2>&1 \
      || { log "debootstrap failed, see $cache/debootstrap.log"; rm -rf "$rootfs"; exit 1; }
    trim_rootfs "$rootfs"
    # Sorted names, numeric owners and clamped mtimes: the same files give the same tarball.
    local tar_opts=(--sort=name --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" --clamp-mtime
      --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime)
    tar -C "$rootfs" "${tar_opts[@]}" -cf "$tar_builder.tmp" .
    # shellcheck disable=SC2046  # a list of package names
    chroot "$rootfs" dpkg --purge $(build_only_packages) >>"$cache/debootstrap.log"
    trim_rootfs "$rootfs"
    chroot "$rootfs" dpkg-query -Wf '${Package}=${Version}\n' >"$tar_base.packages"
    tar -C "$rootfs" "${tar_opts[@]}" -cf "$tar_base.tmp" .
    mv "$tar_builder.tmp" "$tar_builder" && mv "$tar_base.tmp" "$tar_base"
    rm -rf "$rootfs"
  fi
  import_rootfs "$tar_builder" "$builder"
  import_rootfs "$tar_base" "$base"
}

# --- images ---------------------------------------------------------------------------------------
# Each image's hashed requirement set must be a subset of requirements.lock, pin for pin.
for req in "$root"/images/{operator,agent-service}.requirements.txt; do
  stray=$(grep -oE '^[a-z0-9._-]+==[^ ]+' "$req" | grep -vxFf <(grep -oE '^[a-z0-9._-]+==[^ ]+' "$root/requirements.lock") || true)
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

for name in ${IMAGES:-operator agent-service}; do
  case $name in
    operator) tag="$IMAGE_REPOSITORY/shepherd-operator:$version" ;;
    agent-service) tag="$IMAGE_REPOSITORY/agent-service:$version" ;;
    *) log "unknown image $name"; exit 1 ;;
  esac
  start=$SECONDS
  log "building $tag on $base"
  bh bud --quiet --layers --pull=false --timestamp "$SOURCE_DATE_EPOCH" \
    --build-arg BASE_IMAGE="$base" --build-arg BUILDER_IMAGE="$builder" --build-arg VERSION="$version" --build-arg REVISION="$revision" \
    --build-arg SOURCE="$IMAGE_SOURCE" --build-arg PIP_FLAGS="--no-index --find-links /mnt/images/wheels" -f "$root/images/$name.Containerfile" -t "$tag" "$ctx" >/dev/null
  # kind/containerd name the imported image after the archive's full reference annotation.
  rm -f "$out/$name.oci.tar"
  bh push --quiet "$tag" "oci-archive:$out/$name.oci.tar:$tag" >&2
  log "$tag -> $out/$name.oci.tar ($((SECONDS - start)) s)"
  echo "$tag $out/$name.oci.tar"
done
