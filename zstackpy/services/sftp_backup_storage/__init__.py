"""SFTP backup storage: a machine with an agent on port 7171."""
