"""A host's own account through its life: reset, profile, email, password, deletion."""
