"""Deployment: the environments a released image is promoted through (swarm, Kubernetes), their gates and teardown."""
