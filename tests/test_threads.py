"""Thread policy of command-line processes (geojepa.threads)."""

from __future__ import annotations

import pytest

from geojepa.errors import InputError
from geojepa.threads import SMALL_MACHINE, cli_threads


def test_small_machines_run_one_thread_large_ones_torch_default() -> None:
    assert cli_threads({}, cores=2) == 1
    assert cli_threads({}, cores=SMALL_MACHINE) == 1
    assert cli_threads({}, cores=SMALL_MACHINE + 1) is None


def test_environment_overrides() -> None:
    assert cli_threads({"GEOJEPA_THREADS": "3"}, cores=2) == 3
    assert cli_threads({"GEOJEPA_THREADS": "auto"}, cores=2) is None


@pytest.mark.parametrize("bad", ["0", "-1", "two"])
def test_bad_value_says_what_to_write(bad: str) -> None:
    with pytest.raises(InputError, match="GEOJEPA_THREADS"):
        cli_threads({"GEOJEPA_THREADS": bad}, cores=2)
