#!/usr/bin/env bash
# Install, from Debian's packages, the command-line tools the tests need:
# independent hash tools for test vectors, MariaDB client bits, and what the
# Keycloak script uses, Chromium for the login-page tests (Playwright drives it), and the cluster's
# nginx and MariaDB (make cluster). Only what is missing is installed (needs root or sudo).
set -euo pipefail
declare -A PACKAGE_OF=(
  [openssl]=openssl [htpasswd]=apache2-utils [slappasswd]=slapd [argon2]=argon2 [mkpasswd]=whois
  [curl]=curl [unzip]=unzip [mvn]=maven [chromium]=chromium
  [nginx]=nginx-light [envsubst]=gettext-base [mysqld]=mariadb-server [mysql]=mariadb-client
)
missing=()
for tool in "${!PACKAGE_OF[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("${PACKAGE_OF[$tool]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-tools: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >/dev/null
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
