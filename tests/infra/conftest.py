"""Fixtures of the state-machine tests."""

from __future__ import annotations

import pytest

from tests.infra.sfn_moto import dataset_build_machine


@pytest.fixture(scope="module")
def machine():
    """The dataset-build state machine in moto's Step Functions engine, created once per test module."""
    with dataset_build_machine() as created:
        yield created
