"""Parley llm service."""
