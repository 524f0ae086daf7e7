from fixture_app import add


def test_add() -> None:
    assert add(2, 3) == 5


def test_selected_by_pytest_args() -> None:
    assert add(-1, 1) == 0
