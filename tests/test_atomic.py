"""Whole-file writes: never half a file, normal permissions, one-line errors."""

import os

import pytest

from implicit_nn.atomic import write_atomic
from implicit_nn.errors import InputError


def test_replaces_target_with_plain_file_permissions(tmp_path):
    plain = tmp_path / "plain.dat"
    plain.write_text("x")
    target = tmp_path / "backup.dat"
    target.write_text("old content that is longer")
    write_atomic(target, "new\n")
    assert target.read_text() == "new\n"
    assert os.stat(target).st_mode == os.stat(plain).st_mode      # umask applies, not 0600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backup.dat", "plain.dat"]


def test_unwritable_folder_is_one_line_error_and_no_leftovers(tmp_path):
    with pytest.raises(InputError) as err:
        write_atomic(tmp_path / "missing" / "out.dat", "x", "File write error in backup file")
    assert str(err.value).startswith(str(tmp_path / "missing" / "out.dat") + ": File write error")
    assert "\n" not in str(err.value)


def test_file_and_folder_synced_before_and_after_the_rename(tmp_path, monkeypatch):
    """The content is on disk before the rename, the rename before the function returns."""
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: events.append(("fsync", os.path.isdir(
        f"/proc/self/fd/{fd}"))) or real_fsync(fd))
    monkeypatch.setattr(os, "replace", lambda a, b: events.append(("replace",)) or real_replace(a, b))
    write_atomic(tmp_path / "b.dat", "x\n")
    assert events == [("fsync", False), ("replace",), ("fsync", True)]


def test_interrupted_write_leaves_no_temp_file(tmp_path, monkeypatch):
    target = tmp_path / "b.dat"
    target.write_text("old\n")

    def interrupt(fd):
        raise KeyboardInterrupt
    monkeypatch.setattr(os, "fsync", interrupt)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, "new\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.dat"]
    assert target.read_text() == "old\n"
