"""One-time codes (hashed, bound to an address, limited) and the email that carries them."""
