#!/usr/bin/env bash
# Installs and starts what pipeline-cli's tests need, where it is missing.
# Safe to run again: everything already present is left as it is.
#
#   promtool   Debian package `prometheus` (the tests check /metrics with it)
#
# Runs unattended (CI=true, no stdin): apt-get is non-interactive.
set -euo pipefail

log() { echo "services: $*" >&2; }

apt_updated=""
apt_install() {
  if [ "$(id -u)" -ne 0 ]; then
    log "need root to apt-get install $*; install them and run again"; exit 1
  fi
  if [ -z "$apt_updated" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
    apt_updated=1
  fi
  log "installing $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >&2
}

ensure_promtool() {
  command -v promtool >/dev/null 2>&1 || apt_install prometheus
  command -v promtool >/dev/null 2>&1 || { log "promtool still missing after install"; exit 1; }
}

ensure_promtool
log "ready: promtool $(promtool --version 2>&1 | head -n 1 | awk '{print $3}')"
