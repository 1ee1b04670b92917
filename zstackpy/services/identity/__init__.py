"""Identity: accounts, users, sessions, passwords, ownership of resources."""
