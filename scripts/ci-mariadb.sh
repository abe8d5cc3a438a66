#!/usr/bin/env bash
# Start the machine's MariaDB (Debian package) and create the test database and user.
#   scripts/ci-mariadb.sh PASSWORD   (the test user's password, made fresh by the caller)
set -euo pipefail
DB_PASSWORD="${1:?usage: $0 PASSWORD}"
if ! mysqladmin ping --silent >/dev/null 2>&1; then
  service mariadb start >/dev/null 2>&1 || {
    # No init system: start the server directly.
    mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
    (setsid mysqld_safe --user=mysql >/dev/null 2>&1 &)
  }
fi
for _ in $(seq 1 60); do mysqladmin ping --silent >/dev/null 2>&1 && break; sleep 1; done
mysqladmin ping --silent >/dev/null
mysql <<SQL
CREATE DATABASE IF NOT EXISTS identity_test CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE OR REPLACE USER 'identity'@'localhost' IDENTIFIED BY '$DB_PASSWORD';
CREATE OR REPLACE USER 'identity'@'127.0.0.1' IDENTIFIED BY '$DB_PASSWORD';
GRANT ALL ON \`identity\\_test\`.* TO 'identity'@'localhost';
GRANT ALL ON \`identity\\_test\`.* TO 'identity'@'127.0.0.1';
SQL
echo "mariadb: ready, database identity_test"
