"""Callbacks: prediction writers and other training-loop extras."""
