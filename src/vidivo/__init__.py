"""Vidivo: pay-per-minute 1:1 video calls."""
