"""Stores: the metadata database, the artifact (blob) store and the audit chain."""
