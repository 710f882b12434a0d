"""Shared fixtures. Four fake CPU devices for the multi-device paths (set before jax is imported)."""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")

import pathlib  # noqa: E402

import pytest  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"


@pytest.fixture(scope="session")
def dsi1_path() -> pathlib.Path:
    return REPO / "data" / "DSI1.mat"


@pytest.fixture(scope="session")
def uji_folder() -> pathlib.Path:
    return FIXTURES / "ujiindoorloc_mini"


@pytest.fixture(scope="session")
def longterm_zip() -> pathlib.Path:
    return FIXTURES / "longterm_mini.zip"
