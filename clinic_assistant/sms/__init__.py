"""The SMS channel's parts: reply shaping, keywords, sending."""
