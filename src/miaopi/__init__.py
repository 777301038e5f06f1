"""miaopi — instant approval (秒批) of talent-introduction applications.

The data path, in package order: ``api`` takes the request, ``evidence`` gathers it from the
registries, ``eligibility`` evaluates the rules, ``decision`` settles the outcome, and ``records``
stores the case and queues approvals for the post-hoc checks.
"""

__version__ = "0.1.0"
