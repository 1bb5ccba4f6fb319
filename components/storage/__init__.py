"""Shared storage (a ReadWriteMany volume per team) and the checkpoint bucket (a prefix per team)."""
