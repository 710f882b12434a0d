"""Shared fixtures. Four fake CPU devices for the multi-device paths (set before jax is imported)."""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
_CREATED: list[str] = []  # session folders made here, removed when the session ends


def _session_folder(env: str, prefix: str) -> None:
    """`env` names a new temporary folder unless the caller set it; xdist workers inherit it."""
    if env not in os.environ:
        import tempfile

        os.environ[env] = tempfile.mkdtemp(prefix=prefix)
        _CREATED.append(os.environ[env])


# The parsed-data cache in a folder of this test session, not the user's ~/.cache.
_session_folder("JAXFP_CACHE_DIR", "jaxfp-test-cache-")
# XLA's compiled programs on disk for this session, every size kept: the tests build the same
# small programs over and over, and compiling them is most of the suite's time (a CSI stage
# test: 152 s cold, 38 s with its programs cached).
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "-1"
_session_folder("JAX_COMPILATION_CACHE_DIR", "jaxfp-test-xla-")

import pathlib  # noqa: E402

import pytest  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parent.parent


def pytest_sessionfinish(session: pytest.Session) -> None:
    if not hasattr(session.config, "workerinput"):  # the controller, after every worker
        import shutil

        for folder in _CREATED:
            shutil.rmtree(folder, ignore_errors=True)


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


def write_synthetic_csi_store(root: str, n: int = 60, subcarriers: int = 16, seed: int = 0) -> str:
    """A small CSI set in jaxfp's format: one plane wave per receiver, its angle and delay set by the
    receiver's bearing and distance from the BS at (100, -100). No ray tracing needed."""
    import numpy as np

    from jaxfp.data.csi_store import create_dataset, write_chunk

    rng = np.random.default_rng(seed)
    config = {
        "synthetic": True,
        "subcarrier_spacing_hz": 30e3,
        "srs_comb": 8,
        "bs_position": [100.0, -100.0, 30.0],
        "sector_azimuths_deg": [30.0, 150.0, 270.0],
    }
    header = create_dataset(root, config, n, 25, (2, 32, subcarriers))
    xy = np.column_stack([rng.uniform(60, 140, n), rng.uniform(-140, -60, n)])
    rel = xy - [100.0, -100.0]
    bearing = np.arctan2(rel[:, 1], rel[:, 0])
    delay_taps = np.linalg.norm(rel, axis=1) / 60.0 * subcarriers / 2
    f, a = np.arange(subcarriers), np.arange(32)
    phase = -2j * np.pi * (delay_taps[:, None, None] * f[None, None, :] / subcarriers)
    phase = phase + 1j * np.pi * np.sin(bearing)[:, None, None] * a[None, :, None]
    wave = np.exp(phase)[:, None, :, :] * np.ones((1, 2, 1, 1))
    for chunk in range(-(-n // 25)):
        rows = np.arange(chunk * 25, min(chunk * 25 + 25, n))
        write_chunk(
            root,
            chunk,
            {
                "csi": wave[rows].astype(np.complex64),
                "xy": xy[rows],
                "los": np.ones(len(rows), bool),
                "sector": (bearing[rows] > 0).astype(np.int8),
                "num_paths": np.ones(len(rows), np.int32),
                "rx_index": rows,
            },
            header,
        )
    return root


def run_experiment(spec: str, workdir, *overrides: str):
    """What `jaxfp run SPEC --workdir W --config.k=v ...` does, minus the CLI: a failure inside the
    method surfaces here with its traceback."""
    from jaxfp.config import apply_overrides, load_config
    from jaxfp.methods import get_method

    config = apply_overrides(load_config(str(spec)), list(overrides))
    return get_method(config.method)(config, str(workdir))
