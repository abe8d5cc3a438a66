"""The Cognito contract: the JSON API's operations, errors and tokens (shared/spec/token-contract.md).

Protocol logic lives here and never imports Flask; `identity.cognito.api`
only adapts requests and responses.
"""
