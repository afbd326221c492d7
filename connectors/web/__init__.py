"""The web as a platform: a chat page and widget for visitors, and an HTTP/SSE/WebSocket API for apps.

Inbound messages go through the same spine as every webhook (verify → normalize → dedupe → confirmed
publish); replies are written to the conversation's transcript in Redis by the consumer's web sender and
announced on the ``{ns}.web`` fanout exchange, which every serve process binds, so a visitor connected to
any serve process gets them, and one who reconnects resumes from the last message id they saw.
"""
