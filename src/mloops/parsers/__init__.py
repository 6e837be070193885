"""Byte-level decoders for model formats: they read structure and raise on damage, never report findings."""
