"""Account lifecycle: one-time codes and the email that carries them."""
