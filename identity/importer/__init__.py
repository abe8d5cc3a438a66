"""Bulk import of the Kii export into Keycloak and the legacy store (shared/spec/kii-export.md)."""
