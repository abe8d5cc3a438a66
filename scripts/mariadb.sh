#!/usr/bin/env bash
# The machine's MariaDB server (Debian package), as root over its socket.
#   scripts/mariadb.sh start | stop | restart | status
# Works with and without an init system (containers and CI machines often have none).
set -euo pipefail

running() { mysqladmin ping --silent >/dev/null 2>&1; }

start() {
  if ! running; then
    service mariadb start >/dev/null 2>&1 || {
      mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
      (setsid mysqld_safe --user=mysql >/dev/null 2>&1 &)
    }
  fi
  for _ in $(seq 1 60); do running && return 0; sleep 1; done
  echo "mariadb: did not start" >&2
  return 1
}

stop() {
  if running; then
    mysqladmin shutdown
  fi
  for _ in $(seq 1 60); do running || return 0; sleep 1; done
  echo "mariadb: did not stop" >&2
  return 1
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  status) running && echo running || { echo stopped; exit 1; } ;;
  *) echo "usage: $0 start|stop|restart|status" >&2; exit 2 ;;
esac
