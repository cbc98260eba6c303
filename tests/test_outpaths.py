"""Start-up checks of the output paths (outpaths.py): nothing clobbers an input or another output,
every output can be written; refused with the entry's line before any file is touched."""

import os

import pytest

from implicit_nn.cli import main
from test_driver import setup, train  # noqa: F401  (the run folder fixture and the CLI call)


def refused(root, capsys, expected):
    """The run stops with one error line containing `expected`; no output file was touched."""
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    assert train() == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("implicit-nn: error: ./inputs/simulparams.dat:")
    assert expected in err, err
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before
    return err


def line_of(root, entry):
    lines = (root / "inputs/simulparams.dat").read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if line.split()[0] == entry)


@pytest.mark.parametrize("entry, path, what", [
    ("predict_name_valid", "data/valid.csv", "input_name_valid"),
    ("predict_name_test", "data/./train.csv", "input_name"),
    ("save_best_model", "cfg/../cfg/graph_autoencoder_{tag}.dat", "graph_datas"),
    ("output_name", "cfg/shared_w_autoencoder_{tag}.dat", "shared_w_datas"),
    ("test_log_final", "inputs/simulparams.dat", "the parameter file"),
])
def test_output_on_an_input_is_refused(setup, capsys, entry, path, what):
    root = setup()
    tag = next((root / "cfg").glob("graph_*")).name[len("graph_autoencoder_"):-len(".dat")]
    root = setup(**{entry: path.format(tag=tag)})
    err = refused(root, capsys, f"{entry} '{path.format(tag=tag)}' is also {what}, an input: "
                                "the run would overwrite it")
    assert f"simulparams.dat:{line_of(root, entry)}: " in err


def test_output_through_a_symbolic_link_is_the_same_file(setup, capsys):
    root = setup()
    os.symlink(root / "data", root / "out" / "alias")
    setup(predict_name_test="out/alias/test.csv")
    refused(root, capsys, "predict_name_test 'out/alias/test.csv' is also input_name_test")


@pytest.mark.parametrize("entry, other", [("test_log", "output_name"),
                                          ("save_best_model", "predict_name_valid"),
                                          ("test_log_final", "test_log")])
def test_two_outputs_on_one_path_are_refused(setup, capsys, entry, other):
    root = setup(**{entry: "out/./same.dat", other: "out/same.dat"})
    first, second = sorted((entry, other), key=lambda e: line_of(root, e))
    err = refused(root, capsys, f"{second} '{'out/./same.dat' if second == entry else 'out/same.dat'}"
                                f"' is also {first}: two outputs would overwrite each other")
    assert f"simulparams.dat:{line_of(root, second)}: " in err


def test_load_mode_may_resave_the_loaded_backup(setup):
    """The original's load mode writes save_best_model over load_backup on purpose."""
    root = setup(maxiter_grad=1)
    assert train() == 0
    saved = (root / "out/backup.dat").read_text()
    setup(maxiter_grad=0, loaddatas=1, load_backup="out/backup.dat")
    assert train() == 0
    assert (root / "out/backup.dat").read_text() == saved


def test_loaded_backup_is_an_input_for_the_other_outputs(setup, capsys):
    root = setup(maxiter_grad=1)
    assert train() == 0
    setup(maxiter_grad=0, loaddatas=1, load_backup="out/backup.dat",
          predict_name_valid="out/backup.dat", save_best_model="out/b2.dat")
    refused(root, capsys, "predict_name_valid 'out/backup.dat' is also load_backup, an input")
    assert main(["predict", "--load", "out/predict_test.dat", "--quiet", "--backend", "cpu"]) == 1
    assert "predict_name_test 'out/predict_test.dat' is also load_backup" in capsys.readouterr().err


def test_output_that_is_a_folder_is_refused(setup, capsys):
    root = setup(save_best_model="out")
    refused(root, capsys, "save_best_model 'out' is a folder, not a file")


def test_unwritable_output_folder_is_refused_at_start(setup, capsys, monkeypatch):
    """A read-only prediction folder is found before training, not after the last epoch."""
    root = setup(predict_name_test="readonly/predict_test.dat")
    (root / "readonly").mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: False if str(path) == "readonly"
                        else real_access(path, mode))
    refused(root, capsys, "predict_name_test: folder 'readonly' is not writable")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into a read-only folder")
def test_read_only_folder_is_refused_at_start(setup, capsys):
    root = setup(save_best_model="readonly/backup.dat")
    (root / "readonly").mkdir()
    os.chmod(root / "readonly", 0o555)
    try:
        refused(root, capsys, "save_best_model: folder 'readonly' is not writable")
    finally:
        os.chmod(root / "readonly", 0o755)


def test_unwritable_log_is_refused_at_start(setup, capsys, monkeypatch):
    root = setup()
    (root / "out/test_metrics.dat").write_text("an earlier run's log\n")
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: False if str(path).endswith(
        "test_metrics.dat") else real_access(path, mode))
    refused(root, capsys, "test_log: 'out/test_metrics.dat' is not writable")
