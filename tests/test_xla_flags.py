"""jaxfp's XLA flags: added to the user's, never over them; applied before JAX starts."""

from __future__ import annotations

import os
import subprocess
import sys

from jaxfp.xla_flags import DEFAULT_FLAGS, MEASURED_ON, jaxlib_version, with_defaults


def test_defaults_are_added_to_the_users_flags_and_never_override_them() -> None:
    added = with_defaults("--xla_force_host_platform_device_count=4", {"--a": "1", "--b": "x"})
    assert added.split() == ["--xla_force_host_platform_device_count=4", "--a=1", "--b=x"]
    assert with_defaults("--a=7", {"--a": "1"}).split() == ["--a=7"]
    assert with_defaults("", {"--a": "1"}) == "--a=1"


def test_importing_jaxfp_sets_the_flags_unless_turned_off() -> None:
    probe = "import os, jaxfp; print(os.environ.get('XLA_FLAGS', ''))"
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAXFP_XLA_DEFAULTS")}
    on = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
    measured = jaxlib_version().startswith(MEASURED_ON)
    assert all((name in on.stdout) == measured for name in DEFAULT_FLAGS)
    off = subprocess.run(
        [sys.executable, "-c", probe],
        env={**env, "JAXFP_XLA_DEFAULTS": "0"},
        capture_output=True,
        text=True,
    )
    assert off.stdout.strip() == ""
