"""Vectors of 16 float32 or int32 lanes for numba kernels: LLVM's vector types, through numba's
public ``@intrinsic`` extension API.

numba's loop vectoriser vectorises a loop over contiguous data, but it cannot keep the 16
feature maps of one position in one register, which is how STSTNet's first block computes
best (every input value times a vector of 16 weights). These few operations let a kernel say so
directly. LLVM compiles them for the CPU it runs on: one 512-bit register per vector with
AVX-512, two 256-bit ones with AVX2, four 128-bit ones with NEON; no C compiler is involved.

Loads and stores take a C-contiguous 1-d array and an element index, with no bounds check and no
negative-index wrap-around: the caller keeps ``index + 16`` within the array.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.errors import TypingError
from numba.extending import intrinsic, models, register_model

LANES = 16
_FLOATS, _INTS = ir.VectorType(ir.FloatType(), LANES), ir.VectorType(ir.IntType(32), LANES)


class _Vector(types.Type):
    def __init__(self, name: str, dtype: types.Type, llvm: ir.VectorType):
        self.dtype, self.llvm = dtype, llvm
        super().__init__(name=name)


f32x16 = _Vector("f32x16", types.float32, _FLOATS)
i32x16 = _Vector("i32x16", types.int32, _INTS)


@register_model(_Vector)
class _VectorModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, fe_type.llvm)


def _vector_of(array) -> _Vector:
    if not (
        isinstance(array, types.Array)
        and array.ndim == 1
        and array.layout == "C"
        and array.dtype in (types.float32, types.int32)
    ):
        raise TypingError(f"simd needs a C-contiguous 1-d float32 or int32 array, not {array}")
    return f32x16 if array.dtype == types.float32 else i32x16


def _address(context, builder, array_type, array, index_type, index):
    data = context.make_array(array_type)(context, builder, array).data
    return builder.gep(data, [context.cast(builder, index, index_type, types.intp)])


def _broadcast(builder, value, vector: ir.VectorType):
    one = builder.insert_element(ir.Constant(vector, ir.Undefined), value, ir.Constant(ir.IntType(32), 0))
    return builder.shuffle_vector(one, ir.Constant(vector, ir.Undefined), ir.Constant(_INTS, [0] * LANES))


@intrinsic
def load(typingctx, array, index):
    """array[index : index + 16] as a vector."""
    vector = _vector_of(array)

    def codegen(context, builder, sig, args):
        address = _address(context, builder, sig.args[0], args[0], sig.args[1], args[1])
        return builder.load(builder.bitcast(address, vector.llvm.as_pointer()), align=4)

    return vector(array, index), codegen


@intrinsic
def store(typingctx, array, index, value):
    """array[index : index + 16] = value."""
    if _vector_of(array) != value:
        raise TypingError(f"cannot store {value} into {array}")

    def codegen(context, builder, sig, args):
        address = _address(context, builder, sig.args[0], args[0], sig.args[1], args[1])
        builder.store(args[2], builder.bitcast(address, value.llvm.as_pointer()), align=4)
        return context.get_dummy_value()

    return types.none(array, index, value), codegen


@intrinsic
def load_one(typingctx, array, index):
    """array[index] in every lane (a broadcast load: on AVX-512 an operand of the FMA itself)."""
    vector = _vector_of(array)

    def codegen(context, builder, sig, args):
        value = builder.load(_address(context, builder, sig.args[0], args[0], sig.args[1], args[1]))
        return _broadcast(builder, value, vector.llvm)

    return vector(array, index), codegen


@intrinsic
def splat(typingctx, value):
    """value (a number) in every lane: float32 lanes for a float, int32 lanes for an integer."""
    vector = f32x16 if isinstance(value, types.Float) else i32x16

    def codegen(context, builder, sig, args):
        return _broadcast(builder, context.cast(builder, args[0], sig.args[0], vector.dtype), vector.llvm)

    return vector(value), codegen


def _lanewise(name: str, instruction: str):
    @intrinsic
    def operation(typingctx, a, b):
        if a != f32x16 or b != f32x16:
            raise TypingError(f"{name} takes two f32x16")

        def codegen(context, builder, sig, args):
            return getattr(builder, instruction)(args[0], args[1])

        return f32x16(a, b), codegen

    operation.__doc__ = f"a {name} b, lane by lane."
    return operation


add, sub, mul = _lanewise("+", "fadd"), _lanewise("-", "fsub"), _lanewise("*", "fmul")


@intrinsic
def fma(typingctx, a, b, c):
    """a * b + c, fused (one rounding), lane by lane."""

    def codegen(context, builder, sig, args):
        function = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(_FLOATS, [_FLOATS] * 3), "llvm.fma.v16f32"
        )
        return builder.call(function, list(args))

    return f32x16(a, b, c), codegen


@intrinsic
def where_greater(typingctx, a, b, x, y):
    """x where a > b, else y, lane by lane (a NaN is not greater, nor an equal value); a and b
    float vectors, x and y float or int vectors."""
    if a != f32x16 or b != f32x16 or x != y or not isinstance(x, _Vector):
        raise TypingError("where_greater compares two f32x16 and chooses between two vectors of one type")

    def codegen(context, builder, sig, args):
        return builder.select(builder.fcmp_ordered(">", args[0], args[1]), args[2], args[3])

    return x(a, b, x, y), codegen


@intrinsic
def lane(typingctx, vector, index):
    """One lane's value."""

    def codegen(context, builder, sig, args):
        return builder.extract_element(args[0], context.cast(builder, args[1], sig.args[1], types.int32))

    return vector.dtype(vector, index), codegen


def compiles(trial: Callable[[], object], kernel: str) -> bool:
    """Whether ``trial`` (a kernel's first forward and backward pass, which compiles it) runs here:
    numba needs no C compiler, so False only where numba itself fails, with a warning that
    PyTorch's layers (the same function, slower) are used instead. The trial draws nothing from
    a seeded run's random generator."""
    import torch

    try:
        with torch.random.fork_rng(devices=[]):
            trial()
        return True
    except Exception as error:  # numba raises many kinds
        warnings.warn(
            f"merkit could not compile {kernel} with numba ({error}); PyTorch's layers are used, which are slower.",
            stacklevel=3,
        )
        return False
