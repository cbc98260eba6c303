"""implicit-nn: train implicit (cyclic) neural networks given as hypergraph files.

A drop-in port of the CUDA trainer `imp_network` (Szekeres & Izsak, J. Supercomputing 2024):
same input files, same output files, a numba CPU engine and a CuPy GPU engine.
"""

__version__ = "0.1.0"
