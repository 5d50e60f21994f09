"""Provider adapters, one module per vendor, chosen per session by name."""
