"""docsum's load tests: Locust users and shapes, payloads made in code, SLO verdicts.

Run with ``make loadtest`` (see README, "Load testing"); the Locust files are
``loadtests/locustfile.py`` plus one shape from ``loadtests/shapes/``.
"""
