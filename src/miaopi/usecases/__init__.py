"""Use cases: one module per thing a user does, between a route and the core.

A route translates HTTP into a call here and the answer back; the use case applies the rules of
access and input that are not HTTP's, drives the decision (``decision/``) and records it through
a ``UnitOfWork`` (``unit_of_work.py``), which tests replace with a fake.
"""
