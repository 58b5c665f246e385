#!/usr/bin/env bash
# Builds the agent's container image without a registry or a container builder: an OCI image
# layout (oci-layout, index.json, blobs/sha256/: a manifest, its config and one gzip'd layer)
# in one tar, which `ctr images import` takes. The layer holds corrald and corral from the
# build, every shared library they load (what ldd lists, the ELF interpreter included) in a
# merged-/usr tree, a minimal /etc/passwd and /etc/group and the directories the agent uses.
# Nothing else: no shell (the agent execs only itself, `/proc/self/exe fd-holder`, and its
# canary execs a file of the workload, chrooted into the workload's root).
#
# Usage: scripts/build-image.sh [--bin-dir DIR] [--output FILE] [--tag NAME:TAG] [--keep-debug]
#   --bin-dir     where corrald, corral and corral-relay are (default: build/bin)
#   --output      the archive to write (default: build/corrald-image.tar)
#   --tag         the image's name (default: corral/corrald:dev, deploy/kubernetes/daemonset.yaml's)
#   --keep-debug  keep the binaries' debug sections (stripped from the image's copies by default)
# Reproducible: the same binaries and libraries give the same archive, byte for byte (fixed
# owners and mtimes: $SOURCE_DATE_EPOCH, else the commit's time).
set -euo pipefail
src_dir=$(cd "$(dirname "$0")/.." && pwd)

bin_dir=$src_dir/build/bin
output=$src_dir/build/corrald-image.tar
tag=corral/corrald:dev
keep_debug=0
usage() { sed -n '10,14s/^# \{0,1\}//p' "$0"; }
while (($#)); do
  case $1 in
  --bin-dir) bin_dir=${2:?--bin-dir needs a directory} && shift ;;
  --output) output=${2:?--output needs a file} && shift ;;
  --tag) tag=${2:?--tag needs NAME:TAG} && shift ;;
  --keep-debug) keep_debug=1 ;;
  -h | --help) usage && exit 0 ;;
  *) echo "build-image.sh: unknown argument '$1'" >&2 && usage >&2 && exit 2 ;;
  esac
  shift
done
die() {
  echo "build-image.sh: $*" >&2
  exit 1
}
for b in tar gzip sha256sum jq ldd; do
  command -v "$b" >/dev/null || die "$b is not installed (run scripts/setup.sh)"
done
for b in corrald corral corral-relay; do
  [[ -x $bin_dir/$b ]] || die "$bin_dir/$b is missing: build it (cmake --build build --target corrald corral corral-relay) or pass --bin-dir"
done

# The name containerd and Kubernetes look the image up by: a reference without a registry
# is Docker Hub's (kubelet asks the CRI for docker.io/corral/corrald:dev).
[[ $tag == *:* && ${tag##*/} == *:* ]] || tag=$tag:latest
ref=$tag
first=${tag%%/*}
if [[ $tag != */* ]]; then
  ref=docker.io/library/$tag
elif [[ $first != *.* && $first != *:* && $first != localhost ]]; then
  ref=docker.io/$tag
fi

case $(uname -m) in
x86_64) arch=amd64 ;;
aarch64) arch=arm64 ;;
*) arch=$(uname -m) ;;
esac
epoch=${SOURCE_DATE_EPOCH:-$(git -C "$src_dir" log -1 --format=%ct 2>/dev/null || echo 0)}
created=$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)

work=$(mktemp -d /tmp/corral-image.XXXXXX)
trap 'rm -rf --one-file-system "$work"' EXIT
root=$work/rootfs
layout=$work/layout

# copy_file SRC: SRC (symlinks followed) at its place in a merged-/usr tree: /bin, /sbin,
# /lib, /lib64 are under usr/ (the ELF interpreter /lib64/ld-linux-x86-64.so.2 is reached
# through the lib64 -> usr/lib64 link, as on Debian).
copy_file() {
  local src=$1 dst
  case $src in
  /bin/* | /sbin/* | /lib/* | /lib64/*) dst=$root/usr$src ;;
  *) dst=$root$src ;;
  esac
  [[ -e $dst ]] && return 0
  mkdir -p "$(dirname "$dst")"
  cp -L "$src" "$dst"
}

mkdir -p "$root"/usr/{bin,lib,lib64} "$root"/{etc,proc,sys,dev,run/corral,tmp,var/lib/corral}
for l in bin lib lib64; do ln -s "usr/$l" "$root/$l"; done
chmod 1777 "$root/tmp"
chmod 0700 "$root/var/lib/corral" "$root/run/corral"
# root only: the agent runs as root and looks up a group only for --events-file-group.
printf 'root:x:0:0:root:/root:/sbin/nologin\n' >"$root/etc/passwd"
printf 'root:x:0:\n' >"$root/etc/group"
printf 'passwd: files\ngroup: files\n' >"$root/etc/nsswitch.conf"

libs=()
for b in corrald corral corral-relay; do
  cp "$bin_dir/$b" "$root/usr/bin/$b"
  if ((!keep_debug)) && command -v strip >/dev/null; then strip --strip-debug "$root/usr/bin/$b"; fi
  # ldd prints "name => /path (addr)" for a library and "/path (addr)" for the interpreter.
  mapfile -t -O "${#libs[@]}" libs < <(ldd "$bin_dir/$b" |
    awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}')
  grep -q 'not found' < <(ldd "$bin_dir/$b") && die "ldd $bin_dir/$b: a library is not found"
done
mapfile -t libs < <(printf '%s\n' "${libs[@]}" | LC_ALL=C sort -u)
for lib in "${libs[@]}"; do copy_file "$lib"; done
interp=$(find "$root/usr/lib64" "$root/usr/lib" -maxdepth 1 -name 'ld-linux*.so*' | head -n 1)
[[ -n $interp ]] || die "no ELF interpreter among the libraries ldd lists"

# tar_tree DIR: a tar of DIR's content on stdout, in name order, with root owners and the
# fixed mtime (GNU tar's pax format without atime/ctime: the same input, the same bytes).
tar_tree() {
  (cd "$1" && find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort |
    tar --no-recursion -T - --format=posix --numeric-owner --owner=0 --group=0 \
      --mtime="@$epoch" --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
      -cf -)
}
blobs=$layout/blobs/sha256
mkdir -p "$blobs"
# put_blob FILE: moves FILE into blobs/sha256/ under its digest; prints the digest.
put_blob() {
  local sum
  sum=$(sha256sum "$1" | cut -d' ' -f1)
  mv "$1" "$blobs/$sum"
  printf 'sha256:%s' "$sum"
}
size_of() { stat -c %s "$blobs/${1#sha256:}"; }

tar_tree "$root" >"$work/layer.tar"
diff_id=sha256:$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
gzip -n -9 <"$work/layer.tar" >"$work/layer.tar.gz"
layer=$(put_blob "$work/layer.tar.gz")

jq -cn --arg arch "$arch" --arg created "$created" --arg diff "$diff_id" '{
  architecture: $arch, os: "linux", created: $created,
  config: {
    Entrypoint: ["/usr/bin/corrald"],
    Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
    WorkingDir: "/"
  },
  rootfs: {type: "layers", diff_ids: [$diff]},
  history: [{created: $created, created_by: "scripts/build-image.sh"}]
}' >"$work/config.json"
config=$(put_blob "$work/config.json")

jq -cn --arg config "$config" --argjson csize "$(size_of "$config")" \
  --arg layer "$layer" --argjson lsize "$(size_of "$layer")" '{
  schemaVersion: 2,
  mediaType: "application/vnd.oci.image.manifest.v1+json",
  config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $config, size: $csize},
  layers: [{mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: $layer, size: $lsize}]
}' >"$work/manifest.json"
manifest=$(put_blob "$work/manifest.json")

# org.opencontainers.image.ref.name names the image for `ctr images import`; containerd
# takes io.containerd.image.name first when both are there.
jq -cn --arg m "$manifest" --argjson size "$(size_of "$manifest")" --arg arch "$arch" \
  --arg ref "$ref" '{
  schemaVersion: 2,
  mediaType: "application/vnd.oci.image.index.v1+json",
  manifests: [{
    mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $m, size: $size,
    platform: {architecture: $arch, os: "linux"},
    annotations: {"io.containerd.image.name": $ref, "org.opencontainers.image.ref.name": $ref}
  }]
}' >"$layout/index.json"
printf '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"

mkdir -p "$(dirname "$output")"
tar_tree "$layout" >"$output.tmp"
mv "$output.tmp" "$output"

human() { numfmt --to=iec-i --suffix=B "$1"; }
echo "wrote $output ($(human "$(stat -c %s "$output")")): image $ref, $arch"
echo "  manifest $manifest"
echo "  layer    $layer ($(human "$(size_of "$layer")") gzip'd, $(human "$(stat -c %s "$work/layer.tar")") unpacked):" \
  "corrald, corral, corral-relay, ${#libs[@]} libraries (ld.so: /${interp#"$root"/})"
echo "  import:  ctr -n k8s.io images import $output"
