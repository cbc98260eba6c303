"""simulparams.dat: positional reading with name/value checks (inputs.md §3), validate, writer."""

import dataclasses
import os

import numpy as np
import pytest

from implicit_nn.cli import main
from implicit_nn.errors import InputError
from implicit_nn.params import SCHEMA, Params, read_params, validate, write_params

# the committed HTRU2 runs' parameter set (reference README), as simparam.py writes it
SIMPARAM_TEXT = """\
seed                       2025
shuffle_num                100000
thread_num                 4
tol_fixit                  1.0e-5
maxiter_grad               20
maxiter_fix                50
initdx                     1.0
sfreq                      11
input_name                 ../data/htru2smote_train.csv
input_name_valid           ../data/htru2smote_valid.csv
input_name_test            ../data/htru2_test.csv
output_name                ./outputs/results_v0_M5_S32_L8-I8_1.dat
predict_name_valid         ./outputs/predict_valid_v0_M5_S32_L8-I8_1.dat
predict_name_test          ./outputs/predict_test_v0_M5_S32_L8-I8_1.dat
test_log                   ./outputs/test_metrics_v0_M5_S32_L8-I8_1.dat
test_log_final             ./outputs/test_metrics_final_v0_M5_S32_L8-I8_1.dat
learn_num                  13164
valid_num                  2929
test_num                   1790
mini_batch_size            16

neuron_num                 120
input_num                  8
output_num                 8
shared_weights_num         0
shared_biases_num          0
graph_datas                ../configs/v0/graph_autoencoder_v0_M5_S32_L8-I8.dat
logic_datas                ../configs/v0/logic_autoencoder_v0_M5_S32_L8-I8.dat
fixwb_datas                ../configs/v0/fixwb_autoencoder_v0_M5_S32_L8-I8.dat
shared_w_datas             ../configs/v0/shared_w_autoencoder_v0_M5_S32_L8-I8.dat
shared_b_datas             ../configs/v0/shared_b_autoencoder_v0_M5_S32_L8-I8.dat

alpha                      0.0001

train_lossfunction_type    MSE
valid_metric_type          F1
valid_metric_type_2        F1
range_div                  8000

optimizer                  1
nesterov                   1
grad_alpha                 0.01
adam_alpha                 1.0e-3
adam_beta1                 0.9
adam_beta2                 0.999
adam_eps                   1.0e-8

lr_scheduler               2
cyclic_momentum            0
pcr                        1.0
base_momentum              0.85
max_momentum               0.95
div_factor                 10.0
final_div_factor           10.0
step_size                  1
lr_gamma                   0.5
early_stopping             0

ff_optimization            1

clipping                   0
clipping_treshold          1.0

loaddatas                  0
load_backup                ./backup_best_autoencoder_v0_M5_S32_L8-I8_1.dat
save_best_model            ./outputs/backup_best_autoencoder_v0_M5_S32_L8-I8_1.dat
"""


def line_of(text, name):
    return next(i for i, line in enumerate(text.splitlines(), 1) if line.split()[:1] == [name])


@pytest.fixture
def write(tmp_path):
    def write(text):
        path = tmp_path / "simulparams.dat"
        path.write_text(text)
        return path
    return write


def test_reads_simparam_layout(write):
    p = read_params(write(SIMPARAM_TEXT))
    assert len(dataclasses.fields(Params)) == 58
    assert [f.name for f in dataclasses.fields(Params)] == [name for name, _ in SCHEMA]
    assert (p.seed, p.learn_num, p.neuron_num, p.ff_optimization) == (2025, 13164, 120, 1)
    assert type(p.seed) is int and p.input_name == "../data/htru2smote_train.csv"
    assert type(p.tol_fixit) is np.float32 and p.tol_fixit == np.float32(1e-5)
    assert p.adam_eps == np.float32(1e-8) and p.clipping_threshold == np.float32(1.0)
    assert p.alpha == np.float32(0.0001) and p.train_lossfunction_type == "MSE"


def test_writer_reproduces_simparam_and_round_trips(tmp_path, write):
    p = read_params(write(SIMPARAM_TEXT))
    write_params(tmp_path / "out.dat", p)
    text = (tmp_path / "out.dat").read_text()
    # simparam.py writes adam_alpha as the literal 1.0e-3; we write the same value as 0.001
    assert text == SIMPARAM_TEXT.replace("1.0e-3", "0.001")
    odd = dataclasses.replace(p, tol_fixit=np.float32(3e-7), lr_gamma=np.float32(0.1),
                              initdx=np.float32(1e20), load_backup="x" * 99)
    write_params(tmp_path / "odd.dat", odd)
    assert read_params(tmp_path / "odd.dat") == odd


def test_aliases_and_extra_tokens(write):
    text = SIMPARAM_TEXT.replace("shared_biases_num  ", "shared_bias_num    ")
    text = text.replace("clipping_treshold", "clipping_threshold") + "numgrad 1\nnumgrad_eps 1e-3\n"
    assert read_params(write(text)) == read_params(write(SIMPARAM_TEXT))


def replace_line(name, new):
    lines = SIMPARAM_TEXT.splitlines(keepends=True)
    i = line_of(SIMPARAM_TEXT, name) - 1
    lines[i] = new
    return "".join(lines)


MALFORMED = [
    ("wrong name", replace_line("learn_num", "learn_nums 13164\n"), "learn_nums",
     "expected the parameter name 'learn_num' (entry 17 of 58), found 'learn_nums'"),
    ("missing value", replace_line("learn_num", "learn_num\n"), "learn_num",
     "missing value for entry 17 'learn_num'"),
    ("not a number", replace_line("alpha", "alpha  abc\n"), "alpha",
     "expected a number for entry 31 'alpha', found 'abc'"),
    ("partial integer", replace_line("learn_num", "learn_num 11.0\n"), "learn_num",
     "expected a non-negative integer for entry 17 'learn_num', found '11.0'"),
    ("negative", replace_line("seed", "seed -1\n"), "seed",
     "expected a non-negative integer for entry 1 'seed', found '-1'"),
    ("long string", replace_line("graph_datas", "graph_datas " + "g" * 100 + "\n"), "graph_datas",
     "value of entry 26 'graph_datas' is 100 characters long; the original allows at most 99"),
    ("missing line", SIMPARAM_TEXT.replace("valid_num                  2929\n", ""), "test_num",
     "expected the parameter name 'valid_num' (entry 18 of 58), found 'test_num'"),
]


@pytest.mark.parametrize("kind,text,name,message", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_entries(write, capsys, kind, text, name, message):
    path = write(text)
    expected = f"{path}:{line_of(text, name)}: {message}"
    with pytest.raises(InputError) as err:
        read_params(path)
    assert str(err.value) == expected
    assert main(["check", str(path)]) == 1
    captured = capsys.readouterr()
    assert captured.err == f"implicit-nn: error: {expected}\n"
    assert "Traceback" not in captured.out + captured.err


def test_too_few_entries(write, capsys):
    text = SIMPARAM_TEXT.rstrip("\n").rsplit("\n", 1)[0] + "\n"       # drop save_best_model
    path = write(text)
    with pytest.raises(InputError) as err:
        read_params(path)
    assert str(err.value) == (f"{path}:{line_of(text, 'load_backup')}: expected the parameter "
                              "name 'save_best_model' (entry 58 of 58), found end of file")
    assert main(["train", "--quiet", str(path)]) == 1
    assert capsys.readouterr().err.count("\n") == 1


def test_missing_file(capsys, tmp_path):
    assert main(["check", str(tmp_path / "none.dat")]) == 1
    assert capsys.readouterr().err.startswith(f"implicit-nn: error: {tmp_path / 'none.dat'}: ")


@pytest.mark.parametrize("changes,message", [
    (dict(sfreq=0), "sfreq must be between 1 and the number of minibatches \\(823\\), got 0"),
    (dict(sfreq=824), "sfreq must be .*, got 824"),
    (dict(mini_batch_size=0), "mini_batch_size must be positive"),
    (dict(learn_num=0), "learn_num must be positive"),
    (dict(output_num=7), "output_num \\(7\\) must equal input_num \\(8\\)"),
    (dict(neuron_num=7), "neuron_num \\(7\\) must be at least input_num \\(8\\)"),
    (dict(input_num=0, output_num=0), "neuron_num .* all positive"),
    (dict(lr_scheduler=3, step_size=0), "step_size must be positive"),
    (dict(lr_scheduler=2, pcr=np.float32(-1)), "pcr must be > -1/"),
    (dict(lr_scheduler=1, pcr=np.float32("nan")), "pcr nan puts the scheduler's cut at nan"),
    (dict(lr_scheduler=2, pcr=np.float32("inf")), "pcr inf .* not a 64-bit step count"),
    (dict(lr_scheduler=1, pcr=np.float32(1e30)), "pcr 1e\\+30 .* not a 64-bit step count"),
])
def test_validate_rejects_what_crashes_the_original(write, changes, message):
    p = dataclasses.replace(read_params(write(SIMPARAM_TEXT)), **changes)
    with pytest.raises(InputError, match="^simulparams.dat: " + message):
        validate(p, "simulparams.dat")


def test_validate_accepts_limits_and_load_mode(write):
    p = read_params(write(SIMPARAM_TEXT))
    validate(dataclasses.replace(p, sfreq=823), "p")
    validate(dataclasses.replace(p, sfreq=0, maxiter_grad=0), "p")   # load mode: sfreq unused
    validate(dataclasses.replace(p, step_size=0), "p")               # scheduler 2: unused
    validate(dataclasses.replace(p, lr_scheduler=3, pcr=np.float32("nan")), "p")  # pcr unused
    validate(dataclasses.replace(p, maxiter_grad=0, pcr=np.float32("inf")), "p")  # no steps


@pytest.mark.parametrize("entry,value,message", [
    ("mini_batch_size", "0", "mini_batch_size must be positive"),
    ("learn_num", "0", "learn_num must be positive"),
    ("neuron_num", "7", "neuron_num (7) must be at least input_num (8)"),
    ("input_num", "0", "neuron_num (120) must be at least input_num (0)"),
    ("output_num", "7", "output_num (7) must equal input_num (8)"),
    ("sfreq", "0", "sfreq must be between 1 and the number of minibatches (823), got 0"),
    ("pcr", "-inf", "pcr -inf puts the scheduler's cut at -inf steps"),
    ("pcr", "-1e39", "pcr -inf puts the scheduler's cut at -inf steps"),
    ("range_div", "16777217", "range_div 16777217 is above 16777216 (2^24)"),
    ("range_div", "18446744073709551615", "range_div 18446744073709551615 is above"),
    ("initdx", "inf", "initdx must be a finite number, got inf"),
    ("initdx", "nan", "initdx must be a finite number, got nan"),
    ("valid_metric_type", "f1", "unknown valid_metric_type 'f1'; expected one of AUC, F1, MCC, "
                                "TPR"),
    ("valid_metric_type_2", "AUC", "unknown valid_metric_type_2 'AUC'; expected one of F1, MCC, "
                                   "TPR"),
    ("optimizer", "4", "unknown optimizer 4; expected one of 1 (momentum SGD), 2 (Adam), "
                       "3 (Adamax)"),
    ("optimizer", "0", "unknown optimizer 0"),
    ("nesterov", "2", "unknown nesterov 2; expected one of 0 (off), 1 (look-ahead, with "
                      "optimizer 1)"),
    ("lr_scheduler", "4", "unknown lr_scheduler 4; expected one of 0 (constant), 1 (one-cycle), "
                          "2 (cosine annealing), 3 (step decay)"),
    ("cyclic_momentum", "2", "unknown cyclic_momentum 2"),
    ("clipping", "2", "unknown clipping 2; expected one of 0 (off), 1 (clip to "
                      "clipping_threshold)"),
    ("ff_optimization", "2", "unknown ff_optimization 2"),
    ("loaddatas", "2", "unknown loaddatas 2; expected one of 0 (random start), 1 (load "
                       "load_backup)"),
    ("train_lossfunction_type", "mse", "Wrong loss function: 'mse' (expected one of MSE, MAE,"),
])
def test_validation_errors_name_the_entry_line(write, capsys, entry, value, message):
    """Every check of validate names the line of the entry at fault (and `check` prints it)."""
    text = replace_line(entry, f"{entry:<27}{value}\n")
    path = write(text)
    with pytest.raises(InputError) as err:
        validate(read_params(path), path)
    assert str(err.value).startswith(f"{path}:{line_of(text, entry)}: {message}")
    assert main(["check", str(path)]) == 1
    captured = capsys.readouterr().err
    assert captured.count("\n") == 1 and captured.startswith(f"implicit-nn: error: {err.value}")


@pytest.mark.parametrize("entry,value", [("valid_metric_type", "AUC"), ("valid_metric_type", "MCC"),
                                         ("valid_metric_type_2", "TPR"), ("optimizer", "3"),
                                         ("nesterov", "0"), ("lr_scheduler", "0"),
                                         ("cyclic_momentum", "1"), ("clipping", "1"),
                                         ("range_div", "16777216"), ("initdx", "-1e30")])
def test_validate_accepts_every_implemented_choice(write, entry, value):
    path = write(replace_line(entry, f"{entry:<27}{value}\n"))
    validate(read_params(path), path)


@pytest.mark.parametrize("value", ["-0.5", "nan", "-inf"])
def test_negative_clipping_threshold_is_refused_when_clipping(write, value):
    """One behaviour on every backend: the original's two-step clip turns θ < 0 into |θ| for every
    component (NaN: no clipping at all), so the value is refused before training starts."""
    on = replace_line("clipping", f"{'clipping':<27}1\n")
    bad = on.replace(f"{'clipping_treshold':<27}1.0", f"{'clipping_treshold':<27}{value}")
    path = write(bad)
    with pytest.raises(InputError) as err:
        validate(read_params(path), path)
    assert str(err.value).startswith(f"{path}:{line_of(bad, 'clipping_treshold')}: "
                                     "clipping_threshold must be at least 0 with clipping 1")
    off = bad.replace(f"{'clipping':<27}1\n", f"{'clipping':<27}0\n")
    for text in (off, on.replace(f"{'clipping_treshold':<27}1.0", f"{'clipping_treshold':<27}0.0"),
                 on.replace(f"{'clipping_treshold':<27}1.0", f"{'clipping_treshold':<27}inf")):
        validate(read_params(write(text)), path)


def test_entry_line_of_params_made_in_code():
    from implicit_nn.params import entry_line
    assert entry_line(None, "seed") is None
    assert entry_line("/nonexistent/simulparams.dat", "seed") is None


def test_thousands_of_digits_in_a_value(write):
    text = replace_line("seed", "seed " + "1" * 5000 + "\n")
    with pytest.raises(InputError) as err:
        read_params(write(text))
    assert err.value.line == 1 and err.value.message.endswith("found '" + "1" * 60 + "...'")


def test_utf8_file_names_name_the_same_bytes(write, tmp_path):
    """The original passes the name's bytes to fopen; a UTF-8 name must not become mojibake."""
    text = replace_line("input_name", "input_name                 donn\u00e9es/train.csv\n")
    path = tmp_path / "simulparams.dat"
    path.write_bytes(text.encode("utf-8"))
    assert read_params(path).input_name == "donn\u00e9es/train.csv"
    path.write_bytes(text.encode("utf-8").replace("\u00e9".encode(), b"\xe9"))   # latin-1 name
    assert os.fsencode(read_params(path).input_name) == b"donn\xe9es/train.csv"
