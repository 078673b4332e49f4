"""The persister: the only writer of plans, entries, exercises and of request status after creation."""
