"""Zones: the top of the resource tree."""
