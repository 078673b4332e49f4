"""The fault suite: a batch of plans through the real services while processes, broker and database fail.

``python -m tests.faults --help`` runs a scenario (``make faults`` the long one); ``checker`` reads
Postgres afterwards and lists every broken invariant; ``test_fault_suite`` is the short form that
``make test`` runs. See docs/reliability.md for the figures and how to read them.
"""
