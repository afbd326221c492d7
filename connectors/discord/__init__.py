"""Discord: interactions over HTTP (``POST /discord/interactions``) and the Gateway WebSocket (``gateway discord``)."""
