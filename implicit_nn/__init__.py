"""implicit-nn: train implicit (cyclic) neural networks given as hypergraph files.

A drop-in port of the CUDA trainer `imp_network` (Szekeres & Izsak, J. Supercomputing 2024):
same input files, same output files, a numba CPU engine and a CuPy GPU engine.

Python API (the command line is a thin layer over it):

    from implicit_nn import read_params, train, load_network
    params = read_params("inputs/simulparams.dat", maxiter_grad=3)   # keyword overrides
    result = train(params)            # writes the run's files; prints nothing unless verbose=True
    print(result.final.valid_f1, result.history[-1].loss, result.paths.backup)
    model = load_network(params, result.paths.backup)
    outputs = model.predict(x)        # x: float32 array [rows, input_num]
    anomalous = model.classify(x)     # z-score of the reconstruction error > the backup's threshold

The names below are loaded on first use, so `import implicit_nn` does not load numba.
"""

__version__ = "0.1.0"

_API = ("Params", "InputError", "TrainResult", "Model", "PAPER_SETTINGS", "read_params",
        "make_params", "with_overrides", "train", "load_network", "predict")
_RESULTS = ("ValidationRecord", "FinalMetrics", "OutputPaths")
__all__ = list(_API + _RESULTS)


def __getattr__(name):
    """The API's names, imported on first use (PEP 562)."""
    if name in _API:
        from implicit_nn import api
        return getattr(api, name)
    if name in _RESULTS:
        from implicit_nn import results
        return getattr(results, name)
    raise AttributeError(f"module 'implicit_nn' has no attribute {name!r}")


def __dir__():
    """Module attributes including the API's lazily loaded names (so pydoc lists them)."""
    return sorted(list(globals()) + __all__)
