"""Microsoft Teams over the Bot Framework: activities in (``POST /teams/messages``, JWT-authenticated), Bot
Connector REST API replies out (OAuth2 client credentials)."""
