"""Password sign-in: one use case for the JSON API and for Keycloak's login page (the bridge).

Find the user, take their sign-in lock, run the first-login step of a Kii user
(identity.legacy.migration), then ask Keycloak for tokens; the answer is an
outcome (identity.signin.outcomes), never a wire error: the Cognito API and
the bridge each map it to their own responses. No Flask here.
"""
