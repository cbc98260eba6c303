"""Console strings of §8 on a terminal, plain lines otherwise, silence when quiet."""

import io

import numpy as np

from implicit_nn.console import ERASE, Console, progress_bar, status_valid

f32 = np.float32


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar():
    assert progress_bar(0.5) == "[=====>.....] "
    assert progress_bar(0.0) == "[>..........] "
    assert progress_bar(1.0) == "[==========>] "
    assert progress_bar(f32(74) / f32(823)) == "[=>.........] "      # 0.899 rounds up
    assert progress_bar(0.25) == "[===>.......] "                     # 2.5 rounds away from zero


def test_status_valid_of_the_spec():
    text = status_valid(1, 20, f32(0.949), f32(0.901722), f32(0.698154), f32(0.718676), f32(0.901722), 0.06)
    assert text == "   5% [1/20] LE: 9.49E-01 VM: 0.902 MCC: 0.698 TF1: 0.719 | BVM: 0.902 | ET: 0.1s"
    nan = np.frombuffer(bytes.fromhex("0000c0ff"), f32)[0]
    assert "LE: -NAN VM: -nan" in status_valid(3, 20, nan, nan, f32(0), f32(0), f32(0), 1.0)


def test_terminal_validation_and_status_lines():
    out = Terminal()
    con = Console(stream=out)
    con.epoch_start()
    con.validation(1, 20, 73, 823, f32(7.59), f32(0.949), 0.06, f32(0.9), f32(0.7), f32(0.72), f32(0.9), 0.06)
    shown = out.getvalue()
    assert shown.startswith(ERASE * 800 + "\r[=>.........]  [74/823] LE: 7.59E+00 ET: 0.1s ETA: ")
    assert shown.endswith(" | [=>.........]    5% [1/20] LE: 9.49E-01 VM: 0.900 MCC: 0.700 TF1: 0.720"
                          " | BVM: 0.900 | ET: 0.1s")
    out.seek(0)
    out.truncate()
    con.minibatch(1, 20, 822, 823, f32(0.5), f32(0.25), 2.0)       # the last minibatch is always drawn
    assert out.getvalue() == (ERASE * 400 + "\r[==========>]  [823/823] LE: 2.50E-01 ET: 2.0s | "
                              "[=>.........] " + con.str_valid)
    con.epoch_end()
    assert out.getvalue().endswith("\n")
    con.epoch_start()
    assert con.str_valid == ""


def test_done_lines():
    out = Terminal()
    Console(stream=out).done("Loading the validation data", 0.0123)
    assert out.getvalue() == ERASE * 400 + "\r\rLoading the validation data        | 100.00% ET: 0.01s\n"
    plain = io.StringIO()
    Console(stream=plain).done("Feed forward optimization", 0.01)
    assert plain.getvalue() == "Feed forward optimization          | 100.00% ET: 0.01s\n"


def test_not_a_terminal_prints_one_line_per_validation():
    out = io.StringIO()
    con = Console(stream=out)
    con.epoch_start()
    for k in range(10):
        con.minibatch(2, 20, k, 10, f32(1), f32(1), 0.5)
    con.validation(2, 20, 9, 10, f32(8), f32(1), 0.5, f32(0.9), f32(0.5), f32(0.6), f32(0.95), 3.25)
    con.epoch_end()
    con.exploding(f32("inf"))
    assert out.getvalue() == ("epoch 2/20 minibatch 10/10 LE: 1.00E+00 VM: 0.900000 BVM: 0.950000 "
                              "test MCC: 0.500 TF1: 0.600 ET: 3.2s\nExploding iteration.\n"
                              "The training loss is infinite; training stops and the best model "
                              "so far is evaluated.\n")


def test_quiet_prints_nothing():
    out = Terminal()
    con = Console(quiet=True, stream=out)
    con.done("x", 1.0)
    con.minibatch(1, 2, 0, 3, f32(1), f32(1), 0.1)
    con.validation(1, 2, 0, 3, f32(1), f32(1), 0.1, f32(0), f32(0), f32(0), f32(0), 0.1)
    con.epoch_end()
    con.early_stop()
    con.exploding(f32("nan"))
    con.engine("cpu (numba)", "requested with --backend cpu")
    assert out.getvalue() == ""


def test_terminal_messages():
    out = Terminal()
    con = Console(stream=out)
    con.early_stop()
    con.exploding(f32("nan"))
    assert out.getvalue() == ("\nEarly Stopping limit reached.\n\nExploding iteration.\nThe training "
                              "loss is NaN; training stops and the best model so far is evaluated.\n")


def test_progress_line_on_a_terminal():
    from implicit_nn.console import Progress

    out = Terminal()
    bar = Progress("sweep", 4, stream=out)
    bar.update(1, "1 running")
    assert out.getvalue() == "\rsweep [===>.......] 1/4 1 running\x1b[K"
    bar.update(2)                                  # within 0.1 s: not redrawn
    assert out.getvalue().count("\r") == 1
    bar.note("run 2 done")                         # stays above the redrawn status line
    assert out.getvalue().endswith("\r\x1b[Krun 2 done\nsweep [===>.......] 1/4 1 running")
    bar.update(4)                                  # the last state is always drawn
    assert out.getvalue().endswith("\rsweep [==========>] 4/4\x1b[K")
    bar.close()
    assert out.getvalue().endswith("\r\x1b[K")


def test_progress_line_silent_when_not_a_terminal():
    from implicit_nn.console import Progress

    out = io.StringIO()
    bar = Progress("sweep", 2, stream=out)
    bar.update(1, "x")
    bar.note("run 1 done")
    bar.update(2)
    bar.close()
    assert out.getvalue() == "run 1 done\n"
