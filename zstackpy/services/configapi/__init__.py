"""Global configs over the public API: query, update, reset."""
