"""Volumes (root and data) and volume snapshots on primary storage."""
