"""The bottom layer: configuration, database, clock, errors, money text, pub/sub hub."""
