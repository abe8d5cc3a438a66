"""The Keycloak side of the first-login migration (browser sign-ins); see its issue."""
