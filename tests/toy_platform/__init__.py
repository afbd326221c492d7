"""A toy platform, whole in this folder, registered with one line (``GATEWAY_PLATFORMS``): the proof that a new
platform needs nothing outside its own folder (docs/platforms.md)."""
