#!/usr/bin/env bash
# Installs every Debian package Corral's build, demo and tests need.
# Idempotent and non-interactive; run as root on Debian 12.
set -euo pipefail

packages=(
  # build
  build-essential cmake pkg-config git clang clang-format clang-tidy libclang-rt-14-dev
  # BPF programs (bpf/): libbpf, and bpftool for vmlinux.h and skeletons
  libbpf-dev bpftool
  # libraries
  libyaml-cpp-dev nlohmann-json3-dev libcli11-dev libgtest-dev libgmock-dev libbenchmark-dev
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc libcurl4-openssl-dev libssl-dev
  # containerd's API protos (compiled at build time, never copied into the repo)
  golang-github-containerd-containerd-dev golang-github-gogo-protobuf-dev
  # runtime tier: real containers, and what the demo's images are built from
  containerd runc nginx-light bash dash coreutils util-linux curl jq iproute2 procps
  # the CRD schema test (tests/kubernetes)
  python3 python3-yaml python3-jsonschema
  # a KubeArmor client in a second language (tests/runtime/feeder_client.py)
  python3-grpcio python3-grpc-tools openssl
  # metrics served over HTTP, and their parser in the tests (Prometheus text format)
  libcpp-httplib-dev python3-prometheus-client
)

if [[ $(id -u) -ne 0 ]]; then
  echo "setup.sh: must run as root (it installs Debian packages); try: sudo $0" >&2
  exit 1
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# Debian enables and starts the packaged nginx and containerd services on install; Corral's
# demo and tests start their own instances, so the packaged ones are stopped and left disabled.
for svc in nginx containerd; do
  if command -v systemctl >/dev/null && systemctl is-active --quiet "$svc" 2>/dev/null; then
    systemctl disable --now "$svc" >/dev/null 2>&1 || true
  fi
done
echo "setup.sh: all packages present"
