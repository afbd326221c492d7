"""WhatsApp Cloud API: Meta's signed webhooks in (``GET``/``POST /whatsapp``); Graph API ``/messages`` out."""
