"""Any service that signs its webhooks the Standard Webhooks way; signed callbacks out."""
