#!/usr/bin/env bash
# Start or stop the service under gunicorn in the background (make run / make stop).
#   scripts/serve.sh start | stop | status
# IDENTITY_BIND (127.0.0.1:8000) and the IDENTITY_* settings come from the environment.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PID_FILE="$ROOT/var/gunicorn.pid"
LOG_FILE="$ROOT/var/service.log"
BIND="${IDENTITY_BIND:-127.0.0.1:8000}"
export IDENTITY_BIND="$BIND"
# Local only: the login pages on the service's origin (nginx does this in production; the setting is off by default).
export IDENTITY_KEYCLOAK_PROXY="${IDENTITY_KEYCLOAK_PROXY:-true}"

running() { [ -f "$PID_FILE" ] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null; }

case "${1:-}" in
  start)
    if running; then echo "service: already running (pid $(cat "$PID_FILE"))"; exit 0; fi
    mkdir -p "$ROOT/var"
    "$ROOT/.venv/bin/gunicorn" --config "$ROOT/config/gunicorn.conf.py" --daemon \
      --pid "$PID_FILE" --error-logfile "$LOG_FILE" --access-logfile "$LOG_FILE" "identity:create_app()"
    for _ in $(seq 1 60); do
      if curl -fsS -m 2 "http://$BIND/healthz" >/dev/null 2>&1; then
        echo "service: serving on http://$BIND (log: $LOG_FILE)"
        curl -sS -m 5 "http://$BIND/readyz"; echo
        exit 0
      fi
      sleep 0.5
    done
    echo "service: did not answer on http://$BIND; see $LOG_FILE" >&2; tail -n 20 "$LOG_FILE" >&2; exit 1 ;;
  stop)
    if running; then kill -TERM "$(cat "$PID_FILE")"; echo "service: stopped"; fi
    rm -f "$PID_FILE" ;;
  status)
    if running; then echo "running (pid $(cat "$PID_FILE"))"; else echo "not running"; exit 1; fi ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
