"""The JavaScript client library (@parley/client), installed as ``parley_web.lib`` so the
gateway can serve it to the call page; there is no Python here."""
