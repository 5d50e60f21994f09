"""The cases of ``bench.providers``: each cloud adapter against its provider's emulator, one
module per capability, plus the floor a bare client reaches against the same servers."""
