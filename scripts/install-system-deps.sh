#!/usr/bin/env bash
# Installs the Debian packages the test suite drives for real (Redis, load
# balancers, Prometheus tools, Docker). Does nothing when they are all present;
# fails loudly when something is missing and cannot be installed.
set -euo pipefail

packages=(
  redis-server:redis-server redis-sentinel:redis-sentinel redis-cli:redis-tools
  haproxy:haproxy nginx:nginx-light wrk:wrk
  prometheus:prometheus promtool:prometheus prometheus-alertmanager:prometheus-alertmanager
  amtool:prometheus-alertmanager prometheus-blackbox-exporter:prometheus-blackbox-exporter
  dockerd:docker.io debootstrap:debootstrap docker-compose:docker-compose
  valgrind:valgrind callgrind_control:valgrind gcc:gcc
  docker-registry:docker-registry skopeo:skopeo
)
PATH="$PATH:/usr/sbin:/sbin"

missing=()
for entry in "${packages[@]}"; do
  command -v "${entry%%:*}" >/dev/null 2>&1 || missing+=("${entry#*:}")
done
for tool in node npm kubectl terraform java; do
  command -v "$tool" >/dev/null 2>&1 || echo "warning: $tool not found; the deploy checks need it" >&2
done
[ ${#missing[@]} -eq 0 ] && exit 0

mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "missing system packages: ${missing[*]} (install them with apt-get as root)" >&2
  exit 1
fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=300 update -q
apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "${missing[@]}"
