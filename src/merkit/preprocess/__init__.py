"""Preprocessing steps: temporal normalisation, caching."""
