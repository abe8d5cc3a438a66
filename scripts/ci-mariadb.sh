#!/usr/bin/env bash
# Start the machine's MariaDB (Debian package) and create the test database and user.
#   scripts/ci-mariadb.sh PASSWORD   (the test user's password, made fresh by the caller)
set -euo pipefail
DB_PASSWORD="${1:?usage: $0 PASSWORD}"
"$(dirname "${BASH_SOURCE[0]}")/mariadb.sh" start
mysql <<SQL
CREATE DATABASE IF NOT EXISTS identity_test CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE OR REPLACE USER 'identity'@'localhost' IDENTIFIED BY '$DB_PASSWORD';
CREATE OR REPLACE USER 'identity'@'127.0.0.1' IDENTIFIED BY '$DB_PASSWORD';
GRANT ALL ON \`identity\\_test\`.* TO 'identity'@'localhost';
GRANT ALL ON \`identity\\_test\`.* TO 'identity'@'127.0.0.1';
SQL
echo "mariadb: ready, database identity_test"
