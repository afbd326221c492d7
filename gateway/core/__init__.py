"""The ground floor: events, errors, settings, the bus, the store, logs, metrics, tracing and the accept path.

Nothing here imports connectors, consumers, agents or the rest of ``gateway`` (the composition root:
cli, commands, http, runtime, operator tooling), so every package can stand on it
(``tests/unit/test_layers.py`` checks).
"""
