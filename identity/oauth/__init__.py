"""The hosted-UI OAuth endpoints and the issuer's well-known documents (Cognito's paths), backed by Keycloak."""
