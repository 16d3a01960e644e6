"""docsum's load tests: Locust users and shapes, payloads made in code, SLO verdicts.

Run with ``make loadtest`` (see loadtests/README.md); the Locust files are
``loadtests/locustfile.py`` plus one shape from ``loadtests/shapes/``.
"""
