"""Voice-cloning adapters: ElevenLabs (instant voice cloning through its SDK) and PlayHT
(legacy v2 HTTP)."""
