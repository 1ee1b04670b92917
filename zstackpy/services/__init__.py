"""Services, one package per domain; each is registered by a plugin."""
