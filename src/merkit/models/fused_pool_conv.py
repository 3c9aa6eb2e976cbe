"""SSSNet's first block, ``max_pool2d(relu(conv(x)), 3, 3)`` (5x5 convolution, 3 -> 32 maps, no
padding, 28 -> 24 -> 8), in one pass compiled with numba: forward and backward, training only.

The same function as PyTorch's layers (tested to agree to 1e-5 of a float64 reference), without
writing the 24x24 maps: ReLU and the maximum commute, so each 3x3 window keeps only its running
maximum and its argmax (the first in scan order, as PyTorch's pooling on the CPU). The input
needs no gradient, so the backward pass computes the weight and bias gradients alone: the pooled
gradient, where the pooled value is positive (ReLU's gradient), sits at its window's argmax, and
is multiplied by the input patches there. PyTorch's layers (batch normalisation, channel dropout,
with their own random draws) do the rest.

The 32 maps of a position are two vectors of 16 (``merkit.models.simd``; channels-last layouts):
each input value, broadcast, multiplies its tap's two weight vectors. LLVM compiles the kernels
for the CPU they run on (``NUMBA_CPU_NAME=haswell`` for an AVX2-only CPU), with no C compiler.
Single-threaded, in a fixed order: the same inputs on the same CPU give the same bits. Compiled at
first use in each process (about 2 s); numba's on-disk cache is not used (its index is a pickle).
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from numba import njit
from torch import nn

from merkit.models.simd import compiles, fma, load, load_one, splat, store, where_greater

C = 32  # SSSNet's first maps: two vectors
K = 5  # kernel side
SIDE = 28  # the input
HO = SIDE - K + 1  # the convolution's output, 24
PO = HO // 3  # the pooled maps, 8
ROW = K * 3  # one kernel row's taps (kx, q), consecutive in a channels-last row
TAPS = K * ROW  # 75


@njit(nogil=True, inline="always")
def _keep_max(acc0, acc1, here, best0, best1, at0, at1, zero):
    """The running maximum of a window and its position, after ReLU(acc) at position ``here``
    (ties: the earlier position, as PyTorch's pooling)."""
    r0 = where_greater(acc0, zero, acc0, zero)  # NaN -> 0
    r1 = where_greater(acc1, zero, acc1, zero)
    at0, best0 = where_greater(r0, best0, here, at0), where_greater(r0, best0, r0, best0)
    at1, best1 = where_greater(r1, best1, here, at1), where_greater(r1, best1, r1, best1)
    return best0, best1, at0, at1


@njit(nogil=True)
def block_forward(xs, w, b, pooled, argmax):
    """xs (nb, SIDE * SIDE * 3 + 16) channels last; w (TAPS * 32), row (ky, kx, q); b (32) ->
    pooled (nb, PO * PO * 32) the windows' maxima of ReLU(convolution), argmax (nb, PO * PO * 32)
    int32 their positions i * HO + j (ties: the first in scan order). A window's row of three
    positions is computed together, each tap's two weight vectors loaded once for the three."""
    zero, lowest = splat(np.float32(0.0)), splat(np.float32(-np.inf))
    b0, b1 = load(b, 0), load(b, 16)
    for n in range(xs.shape[0]):
        x, pn, an = xs[n], pooled[n], argmax[n]
        for u in range(PO):
            for v in range(PO):
                best0, best1, at0, at1 = lowest, lowest, splat(0), splat(0)
                for di in range(3):
                    i, j = 3 * u + di, 3 * v
                    a0, a1, c0, c1, e0, e1 = b0, b1, b0, b1, b0, b1  # positions j, j + 1, j + 2
                    for ky in range(K):
                        row = ((i + ky) * SIDE + j) * 3
                        for m in range(ROW):
                            tap = (ky * ROW + m) * C
                            w0, w1 = load(w, tap), load(w, tap + 16)
                            x0, x1, x2 = load_one(x, row + m), load_one(x, row + m + 3), load_one(x, row + m + 6)
                            a0, a1 = fma(x0, w0, a0), fma(x0, w1, a1)
                            c0, c1 = fma(x1, w0, c0), fma(x1, w1, c1)
                            e0, e1 = fma(x2, w0, e0), fma(x2, w1, e1)
                    here = i * HO + j
                    best0, best1, at0, at1 = _keep_max(a0, a1, splat(here), best0, best1, at0, at1, zero)
                    best0, best1, at0, at1 = _keep_max(c0, c1, splat(here + 1), best0, best1, at0, at1, zero)
                    best0, best1, at0, at1 = _keep_max(e0, e1, splat(here + 2), best0, best1, at0, at1, zero)
                q = (u * PO + v) * C
                store(pn, q, best0)
                store(pn, q + 16, best1)
                store(an, q, at0)
                store(an, q + 16, at1)


@njit(nogil=True)
def block_backward(xs, pooled, argmax, gp, acc, dw, db):
    """The weight and bias gradients, dw (TAPS, 32) and db (32) float64, added to, from gp
    (nb, PO * PO * 32), the gradient at the pooled values: each one where its value is positive
    (ReLU's gradient), times the input patch at its window's argmax; 64 patches a map instead of
    576. A patch's kernel row (kx, q) is 15 consecutive inputs: one 16-lane multiply-add (``xs``
    has 16 values to spare after the last clip value, so the 16th lane reads within it and is
    dropped). acc (32 * K * 16) float32 scratch: one clip's sums."""
    zero = splat(np.float32(0.0))
    for n in range(xs.shape[0]):
        x, pn, an, gn = xs[n], pooled[n], argmax[n], gp[n]
        for t in range(0, C * K * 16, 16):
            store(acc, t, zero)
        for q in range(PO * PO):
            for k in range(C):
                if pn[q * C + k] > 0.0:
                    value, at = gn[q * C + k], an[q * C + k]
                    db[k] += value
                    g, i, j = splat(value), at // HO, at % HO
                    for ky in range(K):
                        t = (k * K + ky) * 16
                        store(acc, t, fma(load(x, ((i + ky) * SIDE + j) * 3), g, load(acc, t)))
        for k in range(C):
            for ky in range(K):
                for m in range(ROW):
                    dw[ky * ROW + m, k] += acc[(k * K + ky) * 16 + m]


@functools.cache
def compiled() -> bool:
    """Whether numba compiles the kernels here (:func:`merkit.models.simd.compiles`)."""
    return compiles(
        lambda: fused_block(torch.zeros(1, 3, SIDE, SIDE), nn.Conv2d(3, C, K)).sum().backward(), "SSSNet's fused kernel"
    )


def handles(x: torch.Tensor, conv: nn.Conv2d) -> bool:
    """Whether the kernel can run: float32 (B, 3, 28, 28) on the CPU that needs no gradient of
    its own (the kernel computes none), into SSSNet's 32 5x5 filters, and numba working."""
    return (
        x.device.type == "cpu"
        and not x.requires_grad
        and x.dtype == torch.float32
        and tuple(x.shape[1:]) == (3, SIDE, SIDE)
        and tuple(conv.weight.shape) == (C, 3, K, K)
        and conv.padding == (0, 0)
        and conv.stride == (1, 1)
        and conv.dilation == (1, 1)
        and compiled()
    )


class _FusedBlock(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias):
        b = x.shape[0]
        xs = np.zeros((b, SIDE * SIDE * 3 + 16), np.float32)  # channels last, 16 values to spare
        xs[:, : SIDE * SIDE * 3] = x.detach().permute(0, 2, 3, 1).numpy().reshape(b, -1)
        w = weight.detach().permute(2, 3, 1, 0).reshape(TAPS, C).contiguous().numpy().reshape(-1)
        pooled, argmax = np.empty((b, PO * PO * C), np.float32), np.empty((b, PO * PO * C), np.int32)
        block_forward(xs, w, bias.detach().contiguous().numpy(), pooled, argmax)
        ctx.arrays = (xs, pooled, argmax)
        out = torch.from_numpy(pooled).view(b, PO, PO, C).permute(0, 3, 1, 2)  # channels last
        return out

    @staticmethod
    def backward(ctx, g):
        xs, pooled, argmax = ctx.arrays
        b = xs.shape[0]
        gp = g.permute(0, 2, 3, 1).contiguous().numpy().reshape(b, -1)
        dw, db = np.zeros((TAPS, C)), np.zeros(C)
        block_backward(xs, pooled, argmax, gp, np.empty(C * K * 16, np.float32), dw, db)
        dweight = torch.from_numpy(dw.astype(np.float32)).view(K, K, 3, C).permute(3, 2, 0, 1).contiguous()
        return None, dweight, torch.from_numpy(db.astype(np.float32))


def fused_block(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """``max_pool2d(relu(conv(x)), 3, 3)``: (B, 3, 28, 28) -> (B, 32, 8, 8) channels last, with
    the gradients of ``conv``'s weight and bias (none for ``x``)."""
    return _FusedBlock.apply(x.detach(), conv.weight, conv.bias)
