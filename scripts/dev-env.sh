#!/usr/bin/env bash
# Write var/dev.env once with fresh random secrets for a local Keycloak and the service.
# Nothing secret is committed: every machine makes its own.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ENV_FILE="${1:-$ROOT/var/dev.env}"
[ -f "$ENV_FILE" ] && exit 0
mkdir -p "$(dirname "$ENV_FILE")"
rand() { python3 -c 'import secrets; print(secrets.token_urlsafe(24))'; }
umask 077
admin_password=$(rand)
cat > "$ENV_FILE" <<ENV
# Local development secrets, made by scripts/dev-env.sh. Not for production.
KC_BOOTSTRAP_ADMIN_USERNAME=admin
KC_BOOTSTRAP_ADMIN_PASSWORD=$admin_password
IDENTITY_KEYCLOAK_BOOTSTRAP_USERNAME=admin
IDENTITY_KEYCLOAK_BOOTSTRAP_PASSWORD=$admin_password
IDENTITY_KEYCLOAK_ADMIN_CLIENT_SECRET=$(rand)
IDENTITY_LEGACY_HASH_KEY=$(rand)
IDENTITY_SECRET_KEY=$(rand)$(rand)
IDENTITY_BRIDGE_SECRET=$(rand)
ENV
echo "wrote $ENV_FILE" >&2
