"""Readers: answers read from retrieved passages (extractive spans, yes/no, generated)."""
