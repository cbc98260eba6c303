"""Seeded mutation test of the bundled example's inputs (tests/fuzzcases.py makes the cases).

For every case: exit 0, or exit 1 with exactly one stderr line `implicit-nn: error: …` and no file
in the run folder created, changed or removed, or exit 3 (training never had a finite model) with
one such line and nothing but appended logs; never a traceback, a hang, a Python warning or an
error line on success; no temp or lock file left.

    IMPLICIT_NN_FUZZ_CASES=5000 python -m pytest tests/test_fuzz.py -s   # a longer run
    IMPLICIT_NN_FUZZ_CASE=1234 python -m pytest tests/test_fuzz.py -s    # replay one case
    IMPLICIT_NN_FUZZ_SEED=7 ...                                          # another case set
"""

import os
import shutil
import subprocess
import sys
import time

import numba

import fuzzcases

CASES = int(os.environ.get("IMPLICIT_NN_FUZZ_CASES", "300"))
SEED = int(os.environ.get("IMPLICIT_NN_FUZZ_SEED", "10"))
ONE = os.environ.get("IMPLICIT_NN_FUZZ_CASE")


def test_one_mutation_cases_in_process(tmp_path_factory):
    threads = numba.get_num_threads()
    base = fuzzcases.make_base(tmp_path_factory.mktemp("fuzz") / "base")
    cases = [int(ONE)] if ONE is not None else range(CASES)
    outcomes, failures = {}, []
    t0 = time.perf_counter()
    try:
        for k in cases:
            what, rc, first_line, broken = fuzzcases.run_case(base, base.parent / "work", SEED, k)
            outcomes[rc] = outcomes.get(rc, 0) + 1
            if ONE is not None:
                print(f"\n{what}: exit {rc}: {first_line}")
            if broken:
                failures.append(f"{what}: exit {rc}: {first_line!r}: {'; '.join(broken)}")
    finally:
        numba.set_num_threads(threads)
    print(f"\nfuzz seed {SEED}: {len(cases)} cases in {time.perf_counter() - t0:.1f} s, "
          f"exit status counts {outcomes}")
    assert not failures, f"{len(failures)} cases broke the rules:\n" + "\n".join(failures[:20])
    if ONE is None:
        assert {0, 1} <= set(outcomes)               # the cases reach both outcomes


def test_cases_in_real_processes(tmp_path_factory):
    """Cases through `python -m implicit_nn`, as a shell sees them (stderr, exit status): two
    generated ones and a parameter of 5000 digits."""
    base = fuzzcases.make_base(tmp_path_factory.mktemp("fuzzproc") / "base")
    for k in range(3):
        work = base.parent / f"work{k}"
        shutil.copytree(base, work)
        if k < 2:
            argv, what = fuzzcases.make_case(work, SEED + 1, k)
        else:
            params = work / fuzzcases.PARAMS
            params.write_text(params.read_text().replace("learn_num                  192",
                                                         "learn_num " + "9" * 5000))
            argv, what = ["train", "--quiet", "--backend", "cpu", fuzzcases.PARAMS], "5000 digits"
        before = fuzzcases.snapshot(work)
        proc = subprocess.run([sys.executable, "-m", "implicit_nn", *argv], cwd=work,
                              capture_output=True, text=True, timeout=300)
        broken = fuzzcases.judge(proc.returncode, proc.stderr, [], before,
                                 fuzzcases.snapshot(work))
        assert not broken, f"{what}: {proc.stderr[:500]}: {broken}"
    assert proc.returncode == 1 and "learn_num" in proc.stderr
