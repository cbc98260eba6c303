"""glibc rand(), the initial weights and the epoch shuffle (inputs.md §7).

The original's one random stream is the C library rand(); reproducing glibc's TYPE_3 additive
feedback generator bit for bit makes initial weights and shuffles identical to the original's.
"""

import time

import numba
import numpy as np

RAND_MAX = 2147483647
_F32 = np.float32


class GlibcRandom:
    """glibc srand/rand (TYPE_3): a 31-word ring buffer, 310 discarded steps after seeding."""

    def __init__(self, seed):
        seed = int(seed)
        if seed == 0:                       # srand(time(0)): not reproducible, as the original
            seed = int(time.time())
        self.state, self.front, self.rear = _seeded_state(seed)

    def rand(self):
        return int(self.draw(1)[0])

    def draw(self, n):
        """The next n rand() values as int64, advancing the stream."""
        out = np.empty(int(n), dtype=np.int64)
        pos = _fill(self.state, self.front, self.rear, out)
        self.front, self.rear = int(pos[0]), int(pos[1])
        return out


def _seeded_state(seed):
    """srand(seed): Park–Miller fill with glibc's truncating arithmetic, then 310 warm-up steps."""
    s = seed % 2**32 or 1
    r0 = s - 2**32 if s >= 2**31 else s          # the word viewed as signed 32-bit
    words = [r0]
    for _ in range(30):
        prev = words[-1]
        hi = _trunc_div(prev, 127773)
        lo = prev - 127773 * hi
        t = 16807 * lo - 2836 * hi
        if t < 0:
            t += 2147483647
        words.append(t)
    state = np.array([w % 2**32 for w in words], dtype=np.uint32)
    scratch = np.empty(310, dtype=np.int64)
    pos = _fill(state, 3, 0, scratch)
    return state, int(pos[0]), int(pos[1])


def _trunc_div(a, b):
    """C integer division (rounds toward zero)."""
    q = abs(a) // b
    return q if a >= 0 else -q


@numba.njit(cache=True)
def _fill(state, front, rear, out):
    """Ring-buffer steps writing each output into `out`; returns the new (front, rear)."""
    for k in range(out.shape[0]):
        word = (state[front] + state[rear]) & np.uint32(0xFFFFFFFF)
        state[front] = word
        out[k] = np.int64(word >> np.uint32(1))
        front += 1
        if front == 31:
            front = 0
        rear += 1
        if rear == 31:
            rear = 0
    return np.array([front, rear], dtype=np.int64)


def rand_range(r, lo, hi):
    """rand_range(min, max) of many draws r: min + (f32(r) / f32(RAND_MAX)) · (max − min), f32 ops."""
    a = np.asarray(r, dtype=np.int64).astype(np.float32)
    u = a / _F32(RAND_MAX)                       # f32(RAND_MAX) == 2^31
    d = _F32(_F32(hi) - _F32(lo))
    return (_F32(lo) + (u * d).astype(np.float32)).astype(np.float32)


def initial_parameters(network, initdx, rng):
    """§7.3: one draw per edge, then per slot with parents; shared means; then fixed values."""
    net = network
    initdx = _F32(initdx)
    slot_parents = net.parent_number
    fan_w = slot_parents[net.edge_target]
    has_parents = slot_parents > 0
    draws = rng.draw(net.all_neighbour_num + int(np.count_nonzero(has_parents)))
    E = net.all_neighbour_num
    weights = rand_range(draws[:E], -initdx, initdx) / np.sqrt(fan_w.astype(np.float32))
    biases = np.zeros(net.all_input_num, dtype=np.float32)
    fan_b = slot_parents[has_parents].astype(np.float32)
    biases[has_parents] = rand_range(draws[E:], -initdx, initdx) / np.sqrt(fan_b)
    weights = _share_means(weights.astype(np.float32), net.shared_weight_groups)
    biases = _share_means(biases, net.shared_bias_groups)
    return net.apply_fixed(weights, biases)


def _share_means(values, groups):
    """All group means from the drawn values first (f32 sums in file order), then assigned."""
    means = []
    for members in groups:
        total = _F32(0.0)
        for m in members:
            total = _F32(total + values[m])
        means.append(_F32(total / _F32(len(members))) if len(members) else None)
    out = values.copy()
    for members, mean in zip(groups, means):
        if mean is not None:
            out[members] = mean
    return out


SHUFFLE_CHUNK = 2**20          # swaps drawn at a time: memory stays small for any shuffle_num


def shuffle_rows(rows, shuffle_num, rng):
    """§7.4: shuffle_num swaps of rows (rand() % n, rand() % n), in place, accumulating per epoch."""
    n = rows.shape[0]
    left = int(shuffle_num)
    while left > 0:
        swaps = min(left, SHUFFLE_CHUNK)
        _swap_rows(rows, rng.draw(2 * swaps) % n)
        left -= swaps


@numba.njit(cache=True)
def _swap_rows(rows, pairs):
    for k in range(0, pairs.shape[0], 2):
        a = pairs[k]
        b = pairs[k + 1]
        for j in range(rows.shape[1]):
            tmp = rows[a, j]
            rows[a, j] = rows[b, j]
            rows[b, j] = tmp
