"""The smallest package the fixture's tests can import."""


def add(a: int, b: int) -> int:
    return a + b
