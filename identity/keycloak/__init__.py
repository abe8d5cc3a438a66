"""Everything the service says to Keycloak goes through here."""

from identity.keycloak.client import Keycloak, keycloak

__all__ = ["Keycloak", "keycloak"]
