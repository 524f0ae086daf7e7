"""The load-test gate: locust against a deployed environment, compared with the environment's SLOs."""
