"""The data the services exchange: events, subjects, stream definitions and LLM reply models.

Contracts are data only: no broker, database or SDK imports live here.
"""
