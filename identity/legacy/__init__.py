"""Legacy (Kii) credentials: the store of imported users' migration state and the hash verifier."""
