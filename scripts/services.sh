#!/usr/bin/env bash
# Installs and starts what pipeline-cli's tests need, where it is missing.
# Safe to run again: everything already present is left as it is.
#
#   promtool   Debian package `prometheus` (the tests check /metrics with it,
#              and run a real Prometheus), `prometheus-pushgateway`, and
#              `prometheus-alertmanager` (amtool checks the example config; the
#              tests run a real Alertmanager to see its inhibit rules work)
#   MariaDB    answering on 127.0.0.1:3306 as root with an empty password and a
#              database `test` (installed from Debian's mariadb-server and
#              started where it is not already running)
#   .venv/     kubernetes-validate (checks deploy/kubernetes/), and the two
#              Elasticsearch-API servers the tests start themselves:
#              noida-db==0.2.3 (Elasticsearch 8 API) and osmem-server==0.1.6
#              (OpenSearch 3 API), from PyPI
#   nginx, openssl  put in front of a test server for basic auth, API keys
#              and TLS (Debian packages; nginx is not started here)
#   gzip, zstd, pzstd  compressed inputs in the tests (Debian's zstd package)
#   chromium   Debian's headless browser: tests/live_page.rs renders the live
#              page at / with and without scripts
#   node_modules/  makelogs==4.3.0 (npm; Debian's nodejs and npm where
#              missing): Elastic's web-log generator, whose documents
#              tests/realistic_index.rs loads (scripts/makelogs_bulk.js)
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

# apt_install, but packaged services are not started (the tests start their
# own, on ports they choose): a temporary policy-rc.d says no.
apt_install_quiet() {
  local made=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    made=1
  fi
  local rc=0
  apt_install "$@" || rc=$?
  [ -n "$made" ] && rm -f /usr/sbin/policy-rc.d
  return "$rc"
}

ensure_promtool() {
  local missing=()
  command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
  command -v prometheus-pushgateway >/dev/null 2>&1 || missing+=(prometheus-pushgateway)
  command -v amtool >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
  if [ ${#missing[@]} -gt 0 ]; then
    apt_install_quiet "${missing[@]}"
  fi
  command -v promtool >/dev/null 2>&1 || { log "promtool still missing after install"; exit 1; }
}

mysql_answers() {
  mysql --protocol=TCP -h 127.0.0.1 -P 3306 -uroot -e 'SELECT 1' >/dev/null 2>&1
}

ensure_mariadb() {
  command -v mysql >/dev/null 2>&1 || apt_install mariadb-client
  if mysql_answers; then
    mysql --protocol=TCP -h 127.0.0.1 -uroot -e 'CREATE DATABASE IF NOT EXISTS test'
    return
  fi
  [ -x /usr/sbin/mariadbd ] || apt_install mariadb-server mariadb-client
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
  if [ ! -d /var/lib/mysql/mysql ]; then
    mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
  fi
  log "starting MariaDB"
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql --bind-address=127.0.0.1 --port=3306
  for _ in $(seq 1 60); do
    mysql -uroot -e 'SELECT 1' >/dev/null 2>&1 && break
    sleep 1
  done
  # Debian's root logs in through the Unix socket only; the tests connect
  # over TCP as root with an empty password, as the README says.
  if ! mysql_answers; then
    mysql -uroot -e "ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('')" || true
  fi
  mysql_answers || { log "MariaDB does not answer on 127.0.0.1:3306 as root"; exit 1; }
  mysql --protocol=TCP -h 127.0.0.1 -uroot -e 'CREATE DATABASE IF NOT EXISTS test'
}

ensure_es_servers() {
  local venv=.venv
  if ! "$venv/bin/python" -c 'import noida_db, osmem_server' >/dev/null 2>&1 \
    || [ ! -x "$venv/bin/kubernetes-validate" ]; then
    if [ ! -x "$venv/bin/pip" ] && ! python3 -m venv "$venv" >/dev/null 2>&1; then
      apt_install python3-venv
      python3 -m venv "$venv"
    fi
    log "installing noida-db, osmem-server and kubernetes-validate into $venv"
    "$venv/bin/pip" install -q --disable-pip-version-check noida-db==0.2.3 osmem-server==0.1.6 \
      kubernetes-validate==1.37.0 >&2
  fi
  local noida
  noida="$("$venv/bin/python" -c 'import noida_db, os; print(os.path.dirname(noida_db.__file__))')/noida-db"
  chmod +x "$noida" "$("$venv/bin/python" -c 'import osmem_server; print(osmem_server.resolve_binary())')"
}

ensure_nginx_openssl() {
  if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
    apt_install_quiet nginx
  fi
  command -v openssl >/dev/null 2>&1 || apt_install openssl
}

# The compressed-input tests pipe through gzip, zstd and pzstd (Debian's
# zstd package).
ensure_compressors() {
  command -v gzip >/dev/null 2>&1 || apt_install gzip
  if ! command -v zstd >/dev/null 2>&1 || ! command -v pzstd >/dev/null 2>&1; then
    apt_install zstd
  fi
}

# The live page is checked in a real browser (headless).
ensure_chromium() {
  command -v chromium >/dev/null 2>&1 || apt_install chromium
}

# makelogs, pinned, into the checkout's node_modules/ (no package.json is
# written: --no-save).
ensure_makelogs() {
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    apt_install nodejs npm
  fi
  if [ "$(node -p 'require("./node_modules/makelogs/package.json").version' 2>/dev/null)" != "4.3.0" ]; then
    log "installing makelogs 4.3.0 into node_modules"
    npm install --prefix . --no-save --no-package-lock --no-audit --no-fund --loglevel=error \
      makelogs@4.3.0 >&2
  fi
}

ensure_promtool
ensure_mariadb
ensure_es_servers
ensure_nginx_openssl
ensure_compressors
ensure_chromium
ensure_makelogs
log "ready: promtool $(promtool --version 2>&1 | head -n 1 | awk '{print $3}'), MariaDB $(mysql --protocol=TCP -h 127.0.0.1 -uroot -N -e 'SELECT VERSION()')"
