"""Graph / logic / fixwb / shared files → one immutable Network of CSR arrays (inputs.md §4).

The original reads the three per-neuron files in lock-step and validates nothing; a wrong count
or index silently corrupts memory. We read the same token streams (implicit_nn.scan) and stop at
the first inconsistency with the file and line that shows it.
"""

import dataclasses
import re

import numpy as np

from .errors import InputError
from .scan import Scanner, splits_as_c, whole_float32

ACTIVATION_IDS = tuple(range(12))   # engine.md §2; engine/activations.py gives them names


# more inputs than any neuron can have (its file would need 2^62 activation ids): a target input
# above it is stored as this, to be refused against the real counts with its written value
INPUTS_MAX = 2**62


def _frozen(values, dtype):
    array = np.array(values, dtype=dtype)
    array.flags.writeable = False
    return array


def _exclusive_sum(counts):
    return _frozen(np.concatenate([[0], np.cumsum(counts)[:-1]]) if len(counts) else [], np.int64)


@dataclasses.dataclass(frozen=True, eq=False)
class Network:
    """The network topology and fixed values; field names as docs/architecture.md."""
    neuron_num: int
    input_num: int
    output_num: int
    all_neighbour_num: int
    all_input_num: int
    neighbour_number: np.ndarray
    bias_number: np.ndarray
    first_ind_neighbour: np.ndarray
    first_ind_bias: np.ndarray
    graph_n: np.ndarray
    graph_i: np.ndarray
    graph_logic: np.ndarray
    fix_weight: np.ndarray
    activation_type: np.ndarray
    bias_logic: np.ndarray
    fix_bias: np.ndarray
    parent_number: np.ndarray
    first_ind_parent: np.ndarray
    graph_p: np.ndarray
    graph_p_ind_n: np.ndarray
    edge_source: np.ndarray
    edge_target: np.ndarray
    parent_edge: np.ndarray
    slot_owner: np.ndarray
    shared_weight_groups: tuple
    shared_bias_groups: tuple
    graph_path: str = None           # for error messages about the topology (levels.py)

    def apply_fixed(self, weights, biases):
        """Copies with every logic-0 weight / bias set to its fixwb value (§4.7)."""
        w = np.array(weights, dtype=np.float32)
        b = np.array(biases, dtype=np.float32)
        fixed_w = self.graph_logic == 0
        fixed_b = self.bias_logic == 0
        w[fixed_w] = self.fix_weight[fixed_w]
        b[fixed_b] = self.fix_bias[fixed_b]
        return w, b


@dataclasses.dataclass
class _Lists:
    """What the lock-step loop collects, in flat file order."""
    neighbour_number: list = dataclasses.field(default_factory=list)
    bias_number: list = dataclasses.field(default_factory=list)
    graph_n: list = dataclasses.field(default_factory=list)
    graph_i: list = dataclasses.field(default_factory=list)
    target_input: list = dataclasses.field(default_factory=list)  # as written (1-based, any size)
    edge_line: list = dataclasses.field(default_factory=list)     # graph-file line of each edge
    neuron_line: list = dataclasses.field(default_factory=list)   # graph-file line of each neuron
    graph_logic: list = dataclasses.field(default_factory=list)
    fix_weight: list = dataclasses.field(default_factory=list)
    activation_type: list = dataclasses.field(default_factory=list)
    bias_logic: list = dataclasses.field(default_factory=list)
    fix_bias: list = dataclasses.field(default_factory=list)


def read_network(params):
    """Read and validate the network files named in params; build the derived arrays (§4.6)."""
    n_num = params.neuron_num
    if n_num < 1:
        raise InputError(f"neuron_num must be positive, got {n_num}")
    if params.input_num > n_num or params.output_num > n_num:
        raise InputError(f"input_num ({params.input_num}) and output_num ({params.output_num}) "
                         f"cannot exceed neuron_num ({n_num})")
    graph = Scanner(params.graph_datas)
    logic = Scanner(params.logic_datas)
    fixwb = Scanner(params.fixwb_datas)
    lists = _read_plain(n_num, graph.text, logic.text, fixwb.text)
    if lists is None:                   # the scanners read it, and word what is wrong
        lists = _read_scanned(n_num, graph, logic, fixwb)
    nb = np.array(lists.bias_number, dtype=np.int64)
    graph_n = np.array(lists.graph_n, dtype=np.int64)
    graph_i = np.array(lists.graph_i, dtype=np.int64)
    bad = np.flatnonzero(graph_i >= nb[graph_n]) if graph_n.size else []
    if len(bad):
        e = bad[0]
        raise InputError(f"edge to input {lists.target_input[e]} of neuron {graph_n[e] + 1}, "
                         f"which has only {nb[graph_n[e]]} inputs", params.graph_datas,
                         lists.edge_line[e])
    net = _build(params, lists)
    if params.shared_weights_num > 0:
        groups = _read_shared_weights(params.shared_w_datas, params.shared_weights_num, net)
        net = dataclasses.replace(net, shared_weight_groups=groups)
    if params.shared_biases_num > 0:
        groups = _read_shared_biases(params.shared_b_datas, params.shared_biases_num, net)
        net = dataclasses.replace(net, shared_bias_groups=groups)
    if params.train_lossfunction_type == "bce_multilabeling":
        _check_bce_outputs(net, params.graph_datas, lists.neuron_line)
    return net


_PLAIN_INT = re.compile(r"[0-9]{1,18}")
_PLAIN_INPUT = re.compile(r"([0-9]{1,18})(;?)")


def _tokens(text):
    """(tokens, their line numbers) of a whole file, or None where str.split and C's isspace
    could differ."""
    if not splits_as_c(text):
        return None
    tokens, lines = [], []
    for number, line in enumerate(text.split("\n"), 1):
        words = line.split()
        tokens += words
        lines += [number] * len(words)
    return tokens, lines


class _Plain(Exception):
    """Not the plain case: the scanners read the files again."""


def _read_plain(n_num, graph_text, logic_text, fixwb_text):
    """The three files in lock-step as _read_neuron reads them, when they are the plain case
    (decimal counts and ids, '###' and ';' where expected, logic values 0 and 1, nothing
    after the last neuron): the same lists in about a sixth of the time, as it works on
    whole-file token lists and builds no message. None for anything else, which the scanners
    then read and refuse with their messages."""
    files = [_tokens(text) for text in (graph_text, logic_text, fixwb_text)]
    if None in files:
        return None
    (graph, graph_line), (logic, _), (fixwb, _) = files
    lists, at = _Lists(), [0, 0, 0]

    def take(k):
        tokens = files[k][0]
        if at[k] >= len(tokens):
            raise _Plain
        at[k] += 1
        return tokens[at[k] - 1]

    def count(k):
        token = take(k)
        if not _PLAIN_INT.fullmatch(token):
            raise _Plain
        return int(token)

    def separator(k):
        if take(k) != "###":
            raise _Plain

    def logic_values(number, flags, fixed):
        for _ in range(number):
            flag = take(1)
            if flag not in ("0", "1"):
                raise _Plain
            flags.append(int(flag))
            if flag == "1":
                fixed.append(0.0)
                continue
            value = whole_float32(take(2))
            if value is None:
                raise _Plain
            fixed.append(value)

    try:
        for _ in range(n_num):
            lists.neuron_line.append(graph_line[at[0]] if at[0] < len(graph) else 0)
            k = count(0)
            separator(0)
            for _ in range(k):
                line = graph_line[at[0]] if at[0] < len(graph) else 0
                t = count(0)
                m = _PLAIN_INPUT.fullmatch(take(0))
                if not 1 <= t <= n_num or m is None or (not m.group(2) and take(0) != ";"):
                    raise _Plain
                i = int(m.group(1))
                if i < 1:
                    raise _Plain
                lists.graph_n.append(t - 1)
                lists.graph_i.append(i - 1)
                lists.target_input.append(i)
                lists.edge_line.append(line)
            logic_values(k, lists.graph_logic, lists.fix_weight)
            separator(0)
            separator(1)
            separator(2)
            b = count(0)
            if b < 1:
                raise _Plain
            separator(0)
            for _ in range(b):
                act = count(0)
                if act not in ACTIVATION_IDS:
                    raise _Plain
                lists.activation_type.append(act)
            logic_values(b, lists.bias_logic, lists.fix_bias)
            lists.neighbour_number.append(k)
            lists.bias_number.append(b)
    except _Plain:
        return None
    if at != [len(graph), len(logic), len(fixwb)]:
        return None
    return lists


def _read_scanned(n_num, graph, logic, fixwb):
    """The three files in lock-step, token by token with the fscanf scanners."""
    lists = _Lists()
    for n in range(n_num):
        _read_neuron(n, n_num, graph, logic, fixwb, lists)
    for scanner in (graph, logic, fixwb):
        if not scanner.at_end():
            raise InputError(f"unexpected content after the {n_num} neurons of neuron_num: "
                             f"'{scanner.peek_shown()}'", scanner.path, scanner.line)
    return lists


def _read_neuron(n, n_num, graph, logic, fixwb, lists):
    """One neuron from the three files in lock-step (§4.5); counts come from the graph file."""
    who = f"neuron {n + 1}"
    lists.neuron_line.append(graph.line)
    k = graph.u64(f"the edge count of {who} (neuron_num = {n_num})", whole=True)
    graph.separator("###", f"'###' after the edge count of {who}")
    for c in range(k):
        line = graph.line
        t = graph.u64(f"the target neuron of edge {c + 1} of {who} ({k} edges)", whole=True)
        if not 1 <= t <= n_num:
            raise InputError(f"edge {c + 1} of {who}: target neuron {t} is outside 1..{n_num}",
                             graph.path, line)
        i = graph.u64(f"the target input of edge {c + 1} of {who}")
        if i < 1:
            raise InputError(f"edge {c + 1} of {who}: target input 0 (inputs count from 1)",
                             graph.path, line)
        graph.separator(";", f"';' after edge {c + 1} of {who}")
        lists.graph_n.append(t - 1)
        lists.graph_i.append(min(i, INPUTS_MAX) - 1)    # above any count: refused once known
        lists.target_input.append(i)
        lists.edge_line.append(line)
    _read_logic(logic, fixwb, k, f"edge of {who} (the graph file gives it {k} edges)",
                lists.graph_logic, lists.fix_weight)
    graph.separator("###", f"'###' after the {k} edges of {who}")
    logic.separator("###", f"'###' after the {k} edge logic values of {who}")
    fixwb.separator("###", f"'###' after the fixed edge values of {who}")
    line = graph.line
    b = graph.u64(f"the input count of {who}", whole=True)
    if b < 1:
        raise InputError(f"{who} has no inputs (each neuron needs at least one)", graph.path, line)
    graph.separator("###", f"'###' after the input count of {who}")
    for j in range(b):
        line = graph.line
        act = graph.u64(f"the activation id of input {j + 1} of {who} ({b} inputs)", whole=True)
        if act not in ACTIVATION_IDS:
            raise InputError(f"input {j + 1} of {who}: unknown activation id {act} (known: "
                             f"{ACTIVATION_IDS[0]}-{ACTIVATION_IDS[-1]})", graph.path, line)
        lists.activation_type.append(act)
    _read_logic(logic, fixwb, b, f"input of {who} (the graph file gives it {b} inputs)",
                lists.bias_logic, lists.fix_bias)
    lists.neighbour_number.append(k)
    lists.bias_number.append(b)


def _read_logic(logic, fixwb, count, what, flags, fixed):
    """`count` logic values; each 0 takes the next fixwb value (1 = trainable, inputs Q8: nothing else)."""
    for c in range(count):
        line = logic.line
        v = logic.u64(f"a logic value (0/1) for {_ordinal(c + 1)} {what}", whole=True)
        if v not in (0, 1):
            raise InputError(f"logic value {v} for {_ordinal(c + 1)} {what}: expected 0 (fixed) "
                             f"or 1 (trainable)", logic.path, line)
        flags.append(v)
        fixed.append(fixwb.f32(f"the fixed value of the {_ordinal(c + 1)} {what}, "
                               f"whose logic value is 0", whole=True) if v == 0 else 0.0)


def _ordinal(k):
    suffix = "th" if 10 <= k % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(k % 10, "th")
    return f"{k}{suffix}"


def _build(params, lists):
    """Flat arrays, prefix sums and the reversed graph (parents of a slot by ascending edge)."""
    n_num = params.neuron_num
    nn = np.array(lists.neighbour_number, dtype=np.int64)
    nb = np.array(lists.bias_number, dtype=np.int64)
    first_nb = _exclusive_sum(nb)
    first_nn = _exclusive_sum(nn)
    graph_n = np.array(lists.graph_n, dtype=np.int64)
    graph_i = np.array(lists.graph_i, dtype=np.int64)
    a_num = int(nb.sum())
    edge_source = np.repeat(np.arange(n_num, dtype=np.int64), nn)
    edge_target = first_nb[graph_n] + graph_i
    parent_number = np.bincount(edge_target, minlength=a_num).astype(np.int64)
    parent_edge = np.argsort(edge_target, kind="stable").astype(np.int64)
    graph_p = edge_source[parent_edge]
    return Network(
        neuron_num=n_num, input_num=params.input_num, output_num=params.output_num,
        all_neighbour_num=int(nn.sum()), all_input_num=a_num,
        neighbour_number=_frozen(nn, np.int64), bias_number=_frozen(nb, np.int64),
        first_ind_neighbour=first_nn, first_ind_bias=first_nb,
        graph_n=_frozen(graph_n, np.int64), graph_i=_frozen(graph_i, np.int64),
        graph_logic=_frozen(lists.graph_logic, np.int64),
        fix_weight=_frozen(lists.fix_weight, np.float32),
        activation_type=_frozen(lists.activation_type, np.int64),
        bias_logic=_frozen(lists.bias_logic, np.int64),
        fix_bias=_frozen(lists.fix_bias, np.float32),
        parent_number=_frozen(parent_number, np.int64),
        first_ind_parent=_exclusive_sum(parent_number),
        graph_p=_frozen(graph_p, np.int64),
        graph_p_ind_n=_frozen(parent_edge - first_nn[graph_p], np.int64),
        edge_source=_frozen(edge_source, np.int64), edge_target=_frozen(edge_target, np.int64),
        parent_edge=_frozen(parent_edge, np.int64),
        slot_owner=_frozen(np.repeat(np.arange(n_num, dtype=np.int64), nb), np.int64),
        shared_weight_groups=(), shared_bias_groups=(), graph_path=str(params.graph_datas),
    )


def _read_groups(path, count, member_size, what, resolve):
    """Up to `count` groups `s ### {member ;} × s`: the groups the file holds.

    A file ending early is accepted as the original accepts it (inputs Q12): the missing groups would be
    empty, and an empty group does nothing, so they are not made at all (a count of 2^64 - 1 with
    an empty file costs nothing; `check` says how many groups were read)."""
    scan = Scanner(path)
    groups = []
    for g in range(count):
        if scan.at_end():
            break
        s = scan.u64(f"the size of {what} group {g + 1}", whole=True)
        scan.separator("###", f"'###' after the size of {what} group {g + 1}")
        members = []
        for q in range(s):
            line = scan.line
            ids = [scan.u64(f"member {q + 1} of {what} group {g + 1} ({member_size} indices)",
                            whole=(k < member_size - 1)) for k in range(member_size)]
            scan.separator(";", f"';' after member {q + 1} of {what} group {g + 1}")
            members.append(resolve(ids, f"member {q + 1} of {what} group {g + 1}", path, line))
        groups.append(_frozen(members, np.int64))
    if not scan.at_end():
        raise InputError(f"unexpected content after the {count} {what} groups: "
                         f"'{scan.peek_shown()}'", path, scan.line)
    return tuple(groups)


def _read_shared_weights(path, count, net):
    """Members are (source, target, input); each resolves to the source's first matching edge."""
    def resolve(ids, who, path, line):
        src, tgt, inp = ids
        _check_neuron(src, net, who, path, line)
        _check_neuron(tgt, net, who, path, line)
        lo = net.first_ind_neighbour[src - 1]
        hi = lo + net.neighbour_number[src - 1]
        hits = np.flatnonzero((net.graph_n[lo:hi] == tgt - 1) & (net.graph_i[lo:hi] == inp - 1))
        if not hits.size:
            raise InputError(f"Shared weight index problem: {who} names an edge from neuron {src} "
                             f"to input {inp} of neuron {tgt}, which the graph does not have",
                             path, line)
        return lo + hits[0]
    return _read_groups(path, count, 3, "shared weight", resolve)


def _read_shared_biases(path, count, net):
    """Members are (neuron, input) → flat slot index; the original checks nothing here (inputs Q11)."""
    def resolve(ids, who, path, line):
        neuron, inp = ids
        _check_neuron(neuron, net, who, path, line)
        if not 1 <= inp <= net.bias_number[neuron - 1]:
            raise InputError(f"{who}: neuron {neuron} has no input {inp} (it has "
                             f"{net.bias_number[neuron - 1]})", path, line)
        return net.first_ind_bias[neuron - 1] + inp - 1
    return _read_groups(path, count, 2, "shared bias", resolve)


def _check_neuron(neuron, net, who, path, line):
    if not 1 <= neuron <= net.neuron_num:
        raise InputError(f"{who}: neuron {neuron} is outside 1..{net.neuron_num}", path, line)


def _check_bce_outputs(net, path, neuron_line):
    """§4.8: bce_multilabeling needs output neurons with one activation-0 input and no edges."""
    for n in range(net.neuron_num - net.output_num, net.neuron_num):
        if (net.bias_number[n] != 1 or net.neighbour_number[n] != 0
                or net.activation_type[net.first_ind_bias[n]] != 0):
            raise InputError(f"Wrong activation function type on the output! bce_multilabeling "
                             f"needs output neuron {n + 1} to have one input with activation 0 "
                             f"and no outgoing edges", path, neuron_line[n])
