"""Slack: Events API, interactivity and slash commands in; Web API out."""
