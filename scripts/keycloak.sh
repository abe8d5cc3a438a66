#!/usr/bin/env bash
# Fetch, start, wait for, stop a real Keycloak for development and tests.
#
#   scripts/keycloak.sh fetch    # mvn dependency:copy from Maven Central, unpack into .cache/
#   scripts/keycloak.sh start    # start in the background (dev-file H2 unless KC_DB is set)
#   scripts/keycloak.sh ensure   # start unless one already answers on the port; restart one this
#                                #   script started from other provider sources (keycloak_spi_bridge)
#   scripts/keycloak.sh wait     # poll the health endpoint until ready (bounded)
#   scripts/keycloak.sh stop | status
#
# Environment (all optional):
#   KEYCLOAK_VERSION        pinned in config/keycloak-version
#   KEYCLOAK_HTTP_PORT      8080
#   KEYCLOAK_MGMT_PORT      9000 (health endpoints)
#   KEYCLOAK_ENV_FILE       var/dev.env; holds KC_BOOTSTRAP_ADMIN_* (made by scripts/dev-env.sh)
#   KC_DB, KC_DB_URL, KC_DB_USERNAME, KC_DB_PASSWORD   use MariaDB/MySQL instead of H2
#   KEYCLOAK_WAIT_SECONDS   300
#   JAVA_HOME               otherwise the newest supported JDK found under /usr/lib/jvm
#   KEYCLOAK_INSTANCE       a name: run a separate copy of the distribution (own data, pid and log),
#                           e.g. the benchmark's Keycloak on MariaDB beside the development one
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION="${KEYCLOAK_VERSION:-$(tr -d '[:space:]' < "$ROOT/config/keycloak-version")}"
CACHE="$ROOT/.cache/keycloak"
DIST_DIR="$CACHE/keycloak-$VERSION"
VAR="$ROOT/var"
INSTANCE="${KEYCLOAK_INSTANCE:-}"
if [ -n "$INSTANCE" ]; then
  HOME_DIR="$CACHE/instances/$INSTANCE-$VERSION"
  PID_FILE="$VAR/keycloak-$INSTANCE.pid"
  LOG_FILE="$VAR/keycloak-$INSTANCE.log"
  STAMP_FILE="$VAR/keycloak-$INSTANCE.provider-stamp"
else
  HOME_DIR="$DIST_DIR"
  PID_FILE="$VAR/keycloak.pid"
  LOG_FILE="$VAR/keycloak.log"
  STAMP_FILE="$VAR/keycloak.provider-stamp"
fi
HTTP_PORT="${KEYCLOAK_HTTP_PORT:-8080}"
MGMT_PORT="${KEYCLOAK_MGMT_PORT:-9000}"
ENV_FILE="${KEYCLOAK_ENV_FILE:-$VAR/dev.env}"
WAIT_SECONDS="${KEYCLOAK_WAIT_SECONDS:-300}"

log() { printf 'keycloak: %s\n' "$*" >&2; }

pick_java() {
  if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then echo "$JAVA_HOME"; return; fi
  # Keycloak 26 supports 17 (deprecated), 21 and 25: prefer the newest installed.
  local candidate
  for candidate in /usr/lib/jvm/temurin-25* /usr/lib/jvm/java-25* /usr/lib/jvm/temurin-21* \
                   /usr/lib/jvm/java-21* /usr/lib/jvm/java-17*; do
    if [ -x "$candidate/bin/java" ]; then echo "$candidate"; return; fi
  done
  command -v java >/dev/null || { log "no JDK found"; exit 1; }
  dirname "$(dirname "$(readlink -f "$(command -v java)")")"
}

fetch() {
  fetch_dist
  if [ "$HOME_DIR" != "$DIST_DIR" ] && [ ! -x "$HOME_DIR/bin/kc.sh" ]; then
    mkdir -p "$(dirname "$HOME_DIR")"
    rm -rf "$HOME_DIR.partial" && cp -a "$DIST_DIR" "$HOME_DIR.partial" && rm -rf "$HOME_DIR.partial/data"
    mv "$HOME_DIR.partial" "$HOME_DIR"
  fi
}

fetch_dist() {
  if [ -x "$DIST_DIR/bin/kc.sh" ]; then return; fi
  mkdir -p "$CACHE"
  log "fetching org.keycloak:keycloak-quarkus-dist:$VERSION:zip with Maven"
  mvn -q -B dependency:copy \
    -Dartifact="org.keycloak:keycloak-quarkus-dist:$VERSION:zip" \
    -DoutputDirectory="$CACHE" -Dmdep.overWriteIfNewer=true
  local zip="$CACHE/keycloak-quarkus-dist-$VERSION.zip"
  rm -rf "$DIST_DIR.partial"
  mkdir -p "$DIST_DIR.partial"
  # Unpack beside the target and rename, so an interrupted unzip never looks complete.
  (cd "$DIST_DIR.partial" && jar xf "$zip" 2>/dev/null || unzip -q "$zip" -d "$DIST_DIR.partial")
  mv "$DIST_DIR.partial/keycloak-$VERSION" "$DIST_DIR"
  rm -rf "$DIST_DIR.partial" "$zip"
  chmod +x "$DIST_DIR"/bin/*.sh
}

build_providers() {
  # The project's providers (keycloak_spi_bridge), built against the pinned version.
  [ -f "$ROOT/keycloak_spi_bridge/pom.xml" ] || return 0
  log "building keycloak_spi_bridge against Keycloak $VERSION"
  mvn -q -B -f "$ROOT/keycloak_spi_bridge/pom.xml" package -DskipTests -Dkeycloak.version="$VERSION"
}

provider_stamp() {
  # What the provider jar is built from: its sources, its POM and the Keycloak it is built against.
  local module="$ROOT/keycloak_spi_bridge"
  {
    echo "$VERSION"
    if [ -f "$module/pom.xml" ]; then
      (cd "$module" && find src pom.xml -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
    fi
  } | sha256sum | cut -d' ' -f1
}

provider_current() {
  [ -f "$STAMP_FILE" ] && [ "$(cat "$STAMP_FILE")" = "$(provider_stamp)" ]
}

install_providers() {
  local jar
  for jar in "$ROOT"/keycloak_spi_bridge/target/*.jar; do
    [ -f "$jar" ] && cp "$jar" "$HOME_DIR/providers/"
  done
  return 0
}

install_themes() {
  # The project's themes (config/keycloak/themes: the China login and email pages), replaced whole.
  local theme
  for theme in "$ROOT"/config/keycloak/themes/*/; do
    [ -d "$theme" ] || continue
    rm -rf "$HOME_DIR/themes/$(basename "$theme")"
    cp -a "$theme" "$HOME_DIR/themes/"
  done
  return 0
}

ready() {
  curl -fsS -m 2 "http://127.0.0.1:$MGMT_PORT/health/ready" >/dev/null 2>&1
}

running() {
  [ -f "$PID_FILE" ] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null
}

start() {
  if running; then log "already running (pid $(cat "$PID_FILE"))"; return; fi
  if ready; then log "a Keycloak already answers on port $MGMT_PORT"; return; fi
  fetch
  mkdir -p "$VAR"
  # Taken before the build: a source changed while it runs shows as a change at the next ensure.
  local stamp; stamp="$(provider_stamp)"
  build_providers
  install_providers
  install_themes
  echo "$stamp" > "$STAMP_FILE"
  if [ -f "$ENV_FILE" ]; then set -a; . "$ENV_FILE"; set +a; fi
  : "${KC_BOOTSTRAP_ADMIN_USERNAME:?set KC_BOOTSTRAP_ADMIN_USERNAME (scripts/dev-env.sh writes var/dev.env)}"
  : "${KC_BOOTSTRAP_ADMIN_PASSWORD:?set KC_BOOTSTRAP_ADMIN_PASSWORD}"
  export KC_BOOTSTRAP_ADMIN_USERNAME KC_BOOTSTRAP_ADMIN_PASSWORD
  local java_home; java_home="$(pick_java)"
  export JAVA_HOME="$java_home" PATH="$java_home/bin:$PATH"
  local mode=start-dev
  # --proxy-headers: Keycloak names the public issuer (sent by the service or by nginx as
  # X-Forwarded-*) in the tokens it issues; it binds to loopback, so only local callers reach it.
  local args=(--http-host=127.0.0.1 --http-port="$HTTP_PORT" --http-management-port="$MGMT_PORT"
              --health-enabled=true --metrics-enabled=true --proxy-headers=xforwarded)
  if [ -n "${KC_DB:-}" ]; then
    # A real database: production mode settings, still plain HTTP on loopback.
    mode=start
    args+=(--http-enabled=true --hostname-strict=false)
  fi
  log "starting Keycloak $VERSION ($mode, JDK $java_home) on 127.0.0.1:$HTTP_PORT; log in $LOG_FILE"
  # setsid: the server survives the shell that started it (make run returns).
  # Appended, not truncated: a restart keeps what came before (the suite's secrets scan reads it all).
  setsid "$HOME_DIR/bin/kc.sh" "$mode" "${args[@]}" >>"$LOG_FILE" 2>&1 < /dev/null 9>&- &
  echo $! > "$PID_FILE"
}

wait_ready() {
  local deadline=$((SECONDS + WAIT_SECONDS))
  until ready; do
    if [ -f "$PID_FILE" ] && ! kill -0 "$(cat "$PID_FILE")" 2>/dev/null; then
      log "Keycloak exited; last lines of $LOG_FILE:"; tail -n 30 "$LOG_FILE" >&2; exit 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then log "not ready after ${WAIT_SECONDS}s"; exit 1; fi
    sleep 1
  done
  log "ready at http://127.0.0.1:$HTTP_PORT"
}

ensure() {
  # One ensure at a time (test runs in parallel): the next one finds the first one's Keycloak current.
  mkdir -p "$VAR"
  exec 9>>"$PID_FILE.ensure-lock"
  flock 9
  # A Keycloak left running from older provider sources would test stale Java: restart it.
  if running && ! provider_current; then
    log "the provider's sources changed since Keycloak started (stamp $STAMP_FILE): restarting it"
    stop
  elif ! running && ready && ! provider_current; then
    log "warning: a Keycloak this script did not start answers on port $MGMT_PORT; its provider may be stale"
  fi
  start
  wait_ready
}

stop() {
  if running; then
    local pid; pid="$(cat "$PID_FILE")"
    # kc.sh execs java in the same session: signal the whole group.
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid"
    local deadline=$((SECONDS + 60))
    while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
    log "stopped"
  fi
  rm -f "$PID_FILE"
}

case "${1:-}" in
  fetch) fetch ;;
  start) start ;;
  wait) wait_ready ;;
  ensure) ensure ;;
  stop) stop ;;
  status) if ready; then echo "ready"; else echo "not ready"; exit 1; fi ;;
  home) fetch; echo "$HOME_DIR" ;;
  *) echo "usage: $0 fetch|start|ensure|wait|stop|status|home" >&2; exit 2 ;;
esac
