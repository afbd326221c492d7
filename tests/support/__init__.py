"""Shared test helpers: services, namespaces, signing, waiting on conditions."""
