"""One argument instead of thirty: the EnginePlan and the Settings packed into single arrays.

numba unboxes every argument of a call separately (≈0.1 µs per array), so the CPU kernels take
the plan as one int64 array and the settings as one float64 array. The named tuples the kernels
index (`plan.first_ind_bias[i]`, `settings.tol_fixit`) are rebuilt inside, by `unpacker`, in
the order of the dataclass fields: no positional list is kept by hand anywhere.

Plan layout: LAYOUT, one offset per field plus an end offset, then the fields one after another
(a scalar is a field of length 1). Settings layout: one float64 per field (every float32 and
every integer setting is exact in float64). LAYOUT (a checksum of both field lists) is checked by
the kernels: numba's cache only watches the kernels' own file, so code compiled for another field
list must fail loudly instead of reading the wrong fields.
"""
import zlib
from collections import namedtuple
from dataclasses import astuple, fields

import numpy as np
from numba import types
from numba.extending import intrinsic

from implicit_nn.engine import jit
from implicit_nn.engine.plan import EnginePlan, Settings

KernelPlan = namedtuple("KernelPlan", [name for name, _ in EnginePlan.kernel_fields()])
KernelSettings = namedtuple("KernelSettings", [f.name for f in fields(Settings)])
_PLAN_ARRAYS = tuple(is_array for _, is_array in EnginePlan.kernel_fields())
_SETTING_TYPES = tuple(types.float32 if f.type is np.float32 else types.int64 for f in fields(Settings))
LAYOUT = zlib.crc32(" ".join(KernelPlan._fields + ("|",) + KernelSettings._fields).encode())
STALE = ("numba's cache holds kernels compiled for another EnginePlan layout: delete "
         "implicit_nn/engine/__pycache__ (or the NUMBA_CACHE_DIR folder)")


def pack_plan(plan):
    """The int64 array the kernels unpack into a KernelPlan."""
    values = [np.atleast_1d(np.asarray(getattr(plan, name), np.int64)) for name in KernelPlan._fields]
    lengths = [v.size for v in values]
    offsets = len(values) + 2 + np.concatenate([[0], np.cumsum(lengths)])
    return np.concatenate([[LAYOUT], offsets] + values).astype(np.int64)


def pack_settings(settings):
    return np.array(astuple(settings), np.float64)


if jit.DISABLED:
    def unpack_plan(packed):
        """KernelPlan of views into `packed` (plain Python)."""
        return KernelPlan(*(packed[packed[j]:packed[j + 1]] if is_array else int(packed[packed[j]])
                            for j, is_array in enumerate(_PLAN_ARRAYS, start=1)))

    def unpack_settings(packed):
        return KernelSettings(*(np.float32(v) if kind == types.float32 else int(v)
                                for v, kind in zip(packed, _SETTING_TYPES)))
else:
    @intrinsic
    def unpack_plan(typingctx, packed):
        """KernelPlan of views into `packed`: arrays as slices, scalars as int64."""
        if not (isinstance(packed, types.Array) and packed.ndim == 1 and packed.dtype == types.int64):
            return None
        view = types.Array(types.int64, 1, "C")
        kinds = [view if is_array else types.int64 for is_array in _PLAN_ARRAYS]
        tuple_type = types.NamedTuple(kinds, KernelPlan)

        def array_field(p, j):
            return p[p[j]:p[j + 1]]

        def scalar_field(p, j):
            return p[p[j]]

        def codegen(context, builder, sig, args):
            items = []
            for j, kind in enumerate(kinds):
                field = array_field if kind is view else scalar_field
                items.append(context.compile_internal(
                    builder, field, kind(sig.args[0], types.intp),
                    [args[0], context.get_constant(types.intp, j + 1)]))
            return context.make_tuple(builder, tuple_type, items)
        return tuple_type(packed), codegen

    @intrinsic
    def unpack_settings(typingctx, packed):
        """KernelSettings from the packed float64 values, each cast to its field's type."""
        if not (isinstance(packed, types.Array) and packed.ndim == 1 and packed.dtype == types.float64):
            return None
        tuple_type = types.NamedTuple(_SETTING_TYPES, KernelSettings)

        def value(c, j):
            return c[j]

        def codegen(context, builder, sig, args):
            items = []
            for j, kind in enumerate(_SETTING_TYPES):
                raw = context.compile_internal(builder, value, types.float64(sig.args[0], types.intp),
                                               [args[0], context.get_constant(types.intp, j)])
                items.append(context.cast(builder, raw, types.float64, kind))
            return context.make_tuple(builder, tuple_type, items)
        return tuple_type(packed), codegen
