-- First start of the compose MariaDB: one database and user for Keycloak, one for the service.
-- Passwords are set afterwards by the operator (see deploy.env.example), never committed.
CREATE DATABASE IF NOT EXISTS keycloak CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE DATABASE IF NOT EXISTS identity CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
