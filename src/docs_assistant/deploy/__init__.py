"""Deployment: the container image (`image`), and later the environments it is promoted through."""
