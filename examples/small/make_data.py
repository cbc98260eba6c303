"""Write the bundled small example: synthetic data, a v1 (implicit) network, inputs/simulparams.dat.

Normal samples lie near a 2-D curved surface in 6-D space, x = tanh(A z) + noise with z ~ N(0, I2);
anomalies are drawn off it (wide Gaussian). Training data holds normal samples only (no label);
validation and test files end each row with a 0/1 label, about 10 % anomalies. Deterministic:
re-running rewrites byte-identical files. Run from anywhere: `python examples/small/make_data.py`.
"""

from pathlib import Path

import numpy as np

from implicit_nn.params import SCHEMA, Params, write_params
from implicit_nn.tools.make_config import make_autoencoder

ROOT = Path(__file__).resolve().parents[2]
SEED = 2024
INPUT_NUM, LATENT_DIM = 6, 2
LEARN_NUM, VALID_NUM, TEST_NUM = 1024, 320, 320
ANOMALY_SHARE = 0.1
NOISE = 0.05


def normal_samples(rng, mixing, n):
    z = rng.standard_normal((n, LATENT_DIM))
    return np.tanh(z @ mixing) + NOISE * rng.standard_normal((n, INPUT_NUM))


def labelled_samples(rng, mixing, n):
    """n rows, the first ~10 % anomalous before a shuffle; returns (x, labels)."""
    anomalies = int(round(ANOMALY_SHARE * n))
    x = np.vstack([rng.normal(0.0, 0.8, (anomalies, INPUT_NUM)),
                   normal_samples(rng, mixing, n - anomalies)])
    labels = np.r_[np.ones(anomalies, dtype=int), np.zeros(n - anomalies, dtype=int)]
    order = rng.permutation(n)
    return x[order], labels[order]


def write_rows(path, x, labels=None):
    text = [" ".join(f"{v:.6f}" for v in row) for row in x]
    if labels is not None:
        text = [f"{row} {label}" for row, label in zip(text, labels)]
    path.write_text("\n".join(text) + "\n")


def example_params(tag, neuron_num):
    """One run, tag `small`, run 1 (so `implicit-nn summarize outputs` reads it): 10 epochs of
    SGD with Nesterov momentum and the one-cycle schedule, as in the paper."""
    data = "examples/small/data"
    net = "examples/small/network"
    values = dict(
        seed=SEED, shuffle_num=2000, thread_num=2, tol_fixit=1.0e-5, maxiter_grad=10,
        maxiter_fix=50, initdx=1.0, sfreq=4,
        input_name=f"{data}/train.dat", input_name_valid=f"{data}/valid.dat",
        input_name_test=f"{data}/test.dat", output_name="outputs/results_small_1.dat",
        predict_name_valid="outputs/predict_valid_small_1.dat",
        predict_name_test="outputs/predict_test_small_1.dat",
        test_log="outputs/test_metrics_small_1.dat",
        test_log_final="outputs/test_metrics_final_small_1.dat",
        learn_num=LEARN_NUM, valid_num=VALID_NUM, test_num=TEST_NUM, mini_batch_size=16,
        neuron_num=neuron_num, input_num=INPUT_NUM, output_num=INPUT_NUM,
        shared_weights_num=0, shared_biases_num=0,
        **{f"{kind}_datas": f"{net}/{kind}_autoencoder_{tag}.dat"
           for kind in ("graph", "logic", "fixwb")},
        shared_w_datas=f"{net}/shared_w_autoencoder_{tag}.dat",
        shared_b_datas=f"{net}/shared_b_autoencoder_{tag}.dat",
        alpha=1.0e-4, train_lossfunction_type="MSE", valid_metric_type="F1",
        valid_metric_type_2="F1", range_div=2000, optimizer=1, nesterov=1, grad_alpha=0.01,
        adam_alpha=1.0e-3, adam_beta1=0.9, adam_beta2=0.999, adam_eps=1.0e-8, lr_scheduler=2,
        cyclic_momentum=0, pcr=1.0, base_momentum=0.85, max_momentum=0.95, div_factor=10.0,
        final_div_factor=10.0, step_size=1, lr_gamma=0.5, early_stopping=0,
        ff_optimization=0, clipping=0, clipping_threshold=1.0, loaddatas=0,
        load_backup="outputs/backup_best_autoencoder_small_1.dat",
        save_best_model="outputs/backup_best_autoencoder_small_1.dat")
    return Params(**{name: (np.float32(values[name]) if kind == "f32" else values[name])
                     for name, kind in SCHEMA})


def write_example(root=ROOT):
    """Write data and network under root/examples/small and root/inputs/simulparams.dat."""
    here = Path(root) / "examples" / "small"
    rng = np.random.default_rng(SEED)
    mixing = rng.normal(0.0, 1.0, (LATENT_DIM, INPUT_NUM))
    (here / "data").mkdir(parents=True, exist_ok=True)
    write_rows(here / "data" / "train.dat", normal_samples(rng, mixing, LEARN_NUM))
    write_rows(here / "data" / "valid.dat", *labelled_samples(rng, mixing, VALID_NUM))
    write_rows(here / "data" / "test.dat", *labelled_samples(rng, mixing, TEST_NUM))
    # v1: latent neurons see each other (2-cycles), so the network is implicit
    tag, layers, neuron_num, _ = make_autoencoder(here / "network", "v1", 3, 8, LATENT_DIM,
                                                  INPUT_NUM, 9)
    (Path(root) / "inputs").mkdir(exist_ok=True)
    write_params(Path(root) / "inputs" / "simulparams.dat", example_params(tag, neuron_num))
    print(f"network {tag}: layers {layers}, {neuron_num} neurons; data in {here / 'data'}")


if __name__ == "__main__":
    write_example()
