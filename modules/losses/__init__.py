"""Losses that are networks of their own (feature/perceptual losses)."""
