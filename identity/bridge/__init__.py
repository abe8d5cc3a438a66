"""The service side of keycloak_spi_bridge: legacy passwords for sign-ins at Keycloak's own login page."""
