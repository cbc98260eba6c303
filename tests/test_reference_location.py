"""Golden tests find the reference folder through $IMPLICIT_NN_REFERENCE and say why they skip."""

import os
import subprocess
import sys

from conftest import REFERENCE_VARIABLE, ROOT, require_reference

GOLDEN = ["tests/test_make_config.py", "-k", "test_reference_configs_byte_identical and v0-size0"]


def pytest_run(reference):
    env = dict(os.environ, **{REFERENCE_VARIABLE: str(reference)})
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *GOLDEN],
                          capture_output=True, text=True, cwd=ROOT, env=env)


def test_missing_reference_folder_skips_with_the_reason_printed(tmp_path):
    done = pytest_run(tmp_path / "nowhere")
    assert done.returncode == 0, done.stdout
    assert "1 skipped" in done.stdout
    assert "SKIPPED" in done.stdout and f"not found at {tmp_path / 'nowhere'}" in done.stdout


def test_variable_points_the_golden_tests_at_a_folder(tmp_path):
    (tmp_path / "configs").symlink_to(require_reference() / "configs")
    done = pytest_run(tmp_path)
    assert done.returncode == 0 and "1 passed" in done.stdout, done.stdout
