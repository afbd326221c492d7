"""Telegram: Bot API webhook updates in; Bot API calls out."""
