"""Synthetic-data training for the CRNN line recognizer (CPU)."""
