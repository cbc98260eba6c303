"""glibc rand, initial parameters and the shuffle against the test vectors of inputs.md §7.5-7.6."""

import ctypes
import ctypes.util
import platform

import numpy as np
import pytest

from implicit_nn.network import read_network
from implicit_nn.rand import GlibcRandom, initial_parameters, shuffle_rows
from test_network import example_params, reference_params

SEED_2025 = [430474341, 984454158, 1806366383, 1496751559, 826011566, 1385078946, 1161970308,
             850697248, 1289092658, 2006528888, 305288650, 1780217672, 278453021, 1755202993,
             2135616634, 1607596271, 533853876, 307955315, 743203043, 1620364150]
SEED_1 = [1804289383, 846930886, 1681692777, 1714636915, 1957747793, 424238335, 719885386,
          1649760492, 596516649, 1189641421]
FIRST = {2026: 1199659537, 2027: 1964850053, 2028: 596906658, 2029: 286712437, 2030: 2130578812,
         2031: 1819759405, 2032: 1518622835, 2033: 150122513, 2034: 909320628}


def f32(*values):
    return np.array(values, dtype=np.float32)


def test_seed_2025_sequence_across_calls():
    rng = GlibcRandom(2025)
    got = [rng.rand(), rng.rand()] + rng.draw(8).tolist() + rng.draw(10).tolist()
    assert got == SEED_2025


@pytest.mark.parametrize("seed", [1, 2**32, 2**32 + 2**64])
def test_seed_1_and_seeds_reduced_to_1(seed):
    """inputs Q4: the seed is taken mod 2^32 and glibc maps 0 to 1."""
    assert GlibcRandom(seed).draw(10).tolist() == SEED_1


def test_first_values_of_the_experiment_seeds():
    assert {s: GlibcRandom(s).rand() for s in FIRST} == FIRST


def test_seed_zero_is_time_based_and_valid():
    values = GlibcRandom(0).draw(1000)
    assert values.dtype == np.int64 and values.min() >= 0 and values.max() <= 2147483647


@pytest.mark.skipif(platform.system() != "Linux" or not ctypes.util.find_library("c"),
                    reason="needs glibc to compare with")
@pytest.mark.parametrize("seed", [7, 2**31 - 1, 2**31, 2**31 + 12345, 2**32 - 1])
def test_matches_the_c_library(seed):
    """Seeds >= 2^31 exercise the signed first word and truncating division (§7.5 step 3)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    if "glibc" not in platform.libc_ver()[0]:
        pytest.skip("C library is not glibc")
    libc.srand(ctypes.c_uint(seed))
    expected = [libc.rand() for _ in range(400)]
    assert GlibcRandom(seed).draw(400).tolist() == expected


def test_worked_example_initial_values(tmp_path):
    """§7.6: ten draws (none for the parentless input-neuron biases), shared means, fixed."""
    net = read_network(example_params(tmp_path))
    rng = GlibcRandom(2025)
    w, b = initial_parameters(net, np.float32(1.0), rng)
    assert w.dtype == np.float32 and b.dtype == np.float32
    shared_w, shared_b = np.float32(0.0816209018), np.float32(0.534643352)
    np.testing.assert_array_equal(w, f32(-0.423620254, -0.0587999113, 0.5, shared_w, shared_w,
                                         0.205029339))
    np.testing.assert_array_equal(b, f32(0.0, 0.0, 0.0581023805, -0.146884799, shared_b,
                                         shared_b))
    assert rng.rand() == SEED_2025[10]                      # exactly 10 draws consumed


def test_worked_example_without_sharing(tmp_path):
    params = example_params(tmp_path)
    params.shared_weights_num = params.shared_biases_num = 0
    w, b = initial_parameters(read_network(params), np.float32(1.0), GlibcRandom(2025))
    np.testing.assert_array_equal(w[3:5], f32(0.393958569, -0.230716765))
    np.testing.assert_array_equal(b[4:], f32(0.200561047, 0.868725657))


def test_reference_config_initial_values_and_first_shuffle():
    """§7.6 for v0_M5_S32_L8-I8 with seed 2025: 1904 init draws, then the epoch-1 shuffle."""
    net = read_network(reference_params("v0", 5, 32, 8))
    rng = GlibcRandom(2025)
    w, b = initial_parameters(net, np.float32(1.0), rng)
    np.testing.assert_array_equal(w[:5], f32(-0.211810127, -0.0293999556, 0.241232932,
                                             0.139285386, -0.0815706924))
    np.testing.assert_array_equal(w[-1], np.float32(-0.0411099419))
    first = net.first_ind_bias[8]                           # neuron 9 (file id)
    assert np.all(b[:first] == 0) and net.parent_number[first] == 8
    np.testing.assert_array_equal(b[first:first + 2], f32(-0.337885082, 0.132890105))
    # the §7.6 vectors hold for learn_num 13014 (htru2_train.csv), not 13164 as stated there:
    # (1945, 6574) = draws 1905, 1906 mod 13014
    learn_num = 13014
    assert (rng.draw(2) % learn_num).tolist() == [1945, 6574]
    rng = GlibcRandom(2025)
    initial_parameters(net, np.float32(1.0), rng)
    rows = np.repeat(np.arange(learn_num, dtype=np.float32)[:, None], 16, axis=1)
    shuffle_rows(rows, 100000, rng)
    assert rows[:10, 0].astype(int).tolist() == [1386, 5594, 2779, 5407, 1319, 9005, 6637,
                                                4267, 10203, 7848]
    assert np.all(rows == rows[:, :1])                      # whole rows move together
    assert sorted(rows[:, 0].astype(int)) == list(range(learn_num))


def test_small_shuffle_and_accumulation():
    """§7.6: learn_num 10, shuffle_num 7 → rows [1, 0, 4, 2, 3, 7, 5, 6, 8, 9]; epoch 2 builds on it."""
    rng = GlibcRandom(2025)
    rng.draw(10)                                            # the worked example's init draws
    rows = np.arange(10, dtype=np.float32).reshape(10, 1)
    shuffle_rows(rows, 7, rng)
    assert rows[:, 0].astype(int).tolist() == [1, 0, 4, 2, 3, 7, 5, 6, 8, 9]
    before = rows.copy()
    pairs = GlibcRandom(2025).draw(10 + 28)[24:] % 10       # the next epoch's 7 pairs
    shuffle_rows(rows, 7, rng)
    for a, c in pairs.reshape(-1, 2):
        before[[a, c]] = before[[c, a]]
    np.testing.assert_array_equal(rows, before)


def test_shuffle_draws_in_chunks_with_the_same_result(monkeypatch):
    """Any shuffle_num runs in bounded memory (it allocated 2 draws per swap at once, so a huge
    shuffle_num failed to allocate); chunking keeps the draw order, so rows are bit-identical."""
    rows = np.arange(40, dtype=np.float32).reshape(20, 2)
    whole = rows.copy()
    shuffle_rows(whole, 1000, GlibcRandom(7))
    monkeypatch.setattr("implicit_nn.rand.SHUFFLE_CHUNK", 7)
    chunked = rows.copy()
    rng = GlibcRandom(7)
    shuffle_rows(chunked, 1000, rng)
    assert np.array_equal(whole, chunked) and not np.array_equal(whole, rows)
    reference = GlibcRandom(7)
    reference.draw(2000)
    assert rng.rand() == reference.rand()                    # the stream advanced by 2000
