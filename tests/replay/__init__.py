"""Replay tests: recorded workflow histories replayed against today's workflow code."""
