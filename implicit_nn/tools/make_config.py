"""`implicit-nn make-config autoencoder`: the paper's autoencoder networks (spec/inputs.md §8).

Families: v0 = dense feed-forward autoencoder; v1 = v0 plus all-to-all lateral edges inside the
latent layer (2-cycles, so the network is implicit); v2 = v1 plus a second, sigmoid-gated input on
every latent neuron with no incoming edges. The written files are byte-identical to the original
generator's (one line per neuron, each ending with a space).
"""

from pathlib import Path

from ..errors import InputError

FAMILIES = ("v0", "v1", "v2")
# the activation of the paper's published runs: ReLU for v0, arctan for v1 and v2 (spec §8.4; the
# v2 files committed upstream say 3, but the published v2 outputs were made with 9)
PAPER_ACT_TYPE = {"v0": 3, "v1": 9, "v2": 9}
ACTIVATION_NAMES = {3: "ReLU", 9: "arctan"}
KNOWN_ACTIVATIONS = range(12)


def layer_sizes(hidden_layer_num, start_layer, latent_num, input_num):
    """Widths of all layers: input, encoder, latent, mirrored decoder, output."""
    encoder = [input_num] + [start_layer // 2 ** i for i in range(hidden_layer_num // 2)]
    return encoder + [latent_num] + encoder[::-1]


def network_lines(family, layers, act_type):
    """Per-neuron lines of the graph, logic and fixwb files."""
    offsets = [sum(layers[:t]) for t in range(len(layers))]
    latent = len(layers) // 2
    last = len(layers) - 1
    graph, logic, fixwb = [], [], []
    for t, width in enumerate(layers):
        for pos in range(width):
            own_id = offsets[t] + pos + 1
            targets = []
            if t < last:
                targets = list(range(offsets[t + 1] + 1, offsets[t + 1] + layers[t + 1] + 1))
            if t == latent and family in ("v1", "v2"):
                targets += [offsets[t] + q + 1 for q in range(width) if offsets[t] + q + 1 != own_id]
            if t == 0 or t == last:
                acts = [0]
            else:
                acts = [act_type]
            if t == latent and family == "v2":
                acts.append(1)
            edges = "".join(f"{target} 1; " for target in targets)
            graph.append(f"{len(targets)} ### {edges}### {len(acts)} ### "
                         + "".join(f"{a} " for a in acts) + "\n")
            bias_logic = "0 " if t == 0 else "1 " * len(acts)
            logic.append("1 " * len(targets) + "### " + bias_logic + "\n")
            fixwb.append("### " + ("0.0 " if t == 0 else "") + "\n")
    return graph, logic, fixwb


def autoencoder_files(family, hidden_layer_num, start_layer, latent_num, input_num, act_type):
    """(tag, layers, neuron_num, trainable, {file name: text}) of one paper network."""
    if family not in FAMILIES:
        raise InputError(f"--family must be one of {', '.join(FAMILIES)}, got '{family}'")
    for name, value in (("--hidden-layer-num", hidden_layer_num), ("--start-layer", start_layer),
                        ("--latent-num", latent_num), ("--input-num", input_num)):
        if value < 1:
            raise InputError(f"{name} must be a positive integer, got {value}")
    if start_layer // 2 ** max(hidden_layer_num // 2 - 1, 0) < 1:
        raise InputError(f"--start-layer {start_layer} is too narrow for "
                         f"{hidden_layer_num // 2} halvings (a layer would be empty)")
    if act_type not in KNOWN_ACTIVATIONS:
        raise InputError(f"--act-type must be an activation id 0-11, got {act_type}")
    layers = layer_sizes(hidden_layer_num, start_layer, latent_num, input_num)
    graph, logic, fixwb = network_lines(family, layers, act_type)
    tag = f"{family}_M{hidden_layer_num}_S{start_layer}_L{latent_num}-I{input_num}"
    contents = {"graph": "".join(graph), "logic": "".join(logic), "fixwb": "".join(fixwb),
                "shared_w": "", "shared_b": ""}
    files = {f"{kind}_autoencoder_{tag}.dat": text for kind, text in contents.items()}
    return tag, layers, sum(layers), contents["logic"].count("1"), files


def make_autoencoder(out_dir, family, hidden_layer_num, start_layer, latent_num, input_num,
                     act_type):
    """Write the five files into out_dir; return (tag, layers, neuron_num, trainable)."""
    tag, layers, neuron_num, trainable, files = autoencoder_files(
        family, hidden_layer_num, start_layer, latent_num, input_num, act_type)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (out / name).write_text(text)
    return tag, layers, neuron_num, trainable


def run_make_config(args):
    act_type = args.act_type
    if act_type is None and args.family in PAPER_ACT_TYPE:
        act_type = PAPER_ACT_TYPE[args.family]
        print(f"Activation: {act_type} ({ACTIVATION_NAMES[act_type]}), the paper's for "
              f"{args.family} (--act-type to change)")
    tag, layers, neuron_num, trainable = make_autoencoder(
        args.out, args.family, args.hidden_layer_num, args.start_layer, args.latent_num,
        args.input_num, act_type)
    print(f"Configuration: {layers}")
    print("Shared weight groups: 0")
    print("Shared bias groups: 0")
    print(f"Neuron num: {neuron_num}")
    print(f"Trainable parameters: {trainable}")
    print(f"Id: *_autoencoder_{tag}.dat")
    return 0
