"""Legacy (Kii) credentials: the store of imported users' migration state and the hash verifier."""


def init_app(app) -> None:
    """Read the verifier's settings once; a bad default scheme or hash-key file fails start-up."""
    from identity.legacy.credentials import LegacySettings

    app.extensions["legacy"] = LegacySettings.from_config(app.config)
