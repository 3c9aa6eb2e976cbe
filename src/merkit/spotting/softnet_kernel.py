"""SOFTNet's three streams in one pass, compiled with numba: each stream's 5x5 convolution (padding
2) of its own input map, ReLU, and the two max poolings (3x3, then the head's 2x2), forward and
backward.

The same function as PyTorch's ``max_pool2d(cat([max_pool2d(relu(conv_s(x_s)), 3)]), 2)``: the two
poolings tile 42x42 exactly, so together they take the maximum of each 6x6 block, and ReLU
commutes with a maximum. The 16 maps (3 + 5 + 8) of a position are one vector
(``merkit.models.simd``): the input is first laid out channels last with each map's own input
map in its lane, so a tap is one vector multiply-add, and the 25 taps' weight vectors stay in
registers. Each block's maximum is taken in PyTorch's order (its four 3x3 windows row by row, each
row by row; ties: the first), and its position is kept. The backward pass needs no input
gradient (the input is data), and a map's weights receive gradient only at the position of each
block's maximum (where it is positive): 49 patches a map instead of 1764. Single-threaded and in a
fixed order: the same inputs on the same CPU give the same bits. Compiled at first use in each
process (about 2 s).
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from numba import njit

from merkit.models.simd import add, compiles, fma, load, load_one, splat, store, where_greater

SIDE = 42  # SOFTNet's input side
C = 16  # the streams' 3 + 5 + 8 maps: one vector
STREAMS = (3, 5, 8)
LANES = np.arange(C, dtype=np.float32)
K, PAD = 5, 2
WP = SIDE + 2 * PAD  # the padded side
BLOCK = 6  # the 3x3 pooling, then the 2x2: one 6x6 block
PS = SIDE // BLOCK  # the pooled side, 7
CELLS = PS * PS


@njit(nogil=True)
def _expand(x, lanes, xe):
    """xe (n, WP * WP * 16) zeros <- x (n, 3 * SIDE * SIDE) padded by 2, channels last, lane m
    holding the input map of map m's stream (``lanes``: 0 .. 15 as float32)."""
    index, plane = load(lanes, 0), SIDE * SIDE
    second, third = splat(np.float32(STREAMS[0] - 0.5)), splat(np.float32(STREAMS[0] + STREAMS[1] - 0.5))
    for n in range(x.shape[0]):
        xn, en = x[n], xe[n]
        for i in range(SIDE):
            for j in range(SIDE):
                at = i * SIDE + j
                value = where_greater(index, second, load_one(xn, plane + at), load_one(xn, at))
                value = where_greater(index, third, load_one(xn, 2 * plane + at), value)
                store(en, ((i + PAD) * WP + j + PAD) * C, value)


@njit(nogil=True, inline="always")
def _taps(w):
    """The 25 taps' weight vectors, w (25 * 16) tap-major -> a tuple, to be held in registers."""
    return (
        load(w, 0), load(w, 16), load(w, 32), load(w, 48), load(w, 64),
        load(w, 80), load(w, 96), load(w, 112), load(w, 128), load(w, 144),
        load(w, 160), load(w, 176), load(w, 192), load(w, 208), load(w, 224),
        load(w, 240), load(w, 256), load(w, 272), load(w, 288), load(w, 304),
        load(w, 320), load(w, 336), load(w, 352), load(w, 368), load(w, 384),
    )  # fmt: skip


@njit(nogil=True, inline="always")
def _conv(x, i, j, taps, bias, zero):
    """The 16 maps' convolution at output (i, j): five chains of five multiply-adds, one per kernel row."""
    top, row = (i * WP + j) * C, WP * C
    r0, r1, r2, r3, r4 = bias, zero, zero, zero, zero
    for kx in range(K):
        at = top + kx * C
        r0 = fma(load(x, at), taps[kx], r0)
        r1 = fma(load(x, at + row), taps[K + kx], r1)
        r2 = fma(load(x, at + 2 * row), taps[2 * K + kx], r2)
        r3 = fma(load(x, at + 3 * row), taps[3 * K + kx], r3)
        r4 = fma(load(x, at + 4 * row), taps[4 * K + kx], r4)
    return add(add(add(r0, r1), add(r2, r3)), r4)


@njit(nogil=True)
def streams_forward(xe, w, b, pooled, argmax):
    """xe (n, WP * WP * 16) from :func:`_expand`; w (25 * 16) tap-major weights; b (16) ->
    pooled (n, CELLS * 16) max(0, each 6x6 block's maximum), argmax (n, CELLS * 16) its position
    i * SIDE + j (cell-major, maps last)."""
    taps, bias, zero, lowest = _taps(w), load(b, 0), splat(np.float32(0.0)), splat(np.float32(-np.inf))
    for n in range(xe.shape[0]):
        x, pn, an = xe[n], pooled[n], argmax[n]
        for u in range(PS):
            for v in range(PS):
                best, at = lowest, splat(0)
                for half_i in range(2):  # the 2x2 pooling's windows in order, each 3x3 window row by row
                    for half_j in range(2):
                        for di in range(3):
                            i = BLOCK * u + 3 * half_i + di
                            for dj in range(3):
                                j = BLOCK * v + 3 * half_j + dj
                                value = _conv(x, i, j, taps, bias, zero)
                                at = where_greater(value, best, splat(i * SIDE + j), at)
                                best = where_greater(value, best, value, best)
                store(pn, (u * PS + v) * C, where_greater(best, zero, best, zero))
                store(an, (u * PS + v) * C, at)


@njit(nogil=True)
def streams_backward(xe, pooled, argmax, g, dw, db):
    """dw (16, 25) and db (16) float64, added to, from g (n, CELLS * 16), the gradient at the
    pooled maps (cell-major, maps last): each positive block maximum's patch times its gradient."""
    for n in range(xe.shape[0]):
        x = xe[n]
        for q in range(CELLS * C):
            gradient = np.float64(g[n, q])
            if pooled[n, q] > 0 and gradient != 0:
                m, at = q % C, argmax[n, q]
                i = at // SIDE
                corner = ((i * WP + at - i * SIDE) * C) + m
                db[m] += gradient
                for ky in range(K):
                    row = corner + ky * WP * C
                    for kx in range(K):
                        dw[m, ky * K + kx] += gradient * x[row + kx * C]


class _Streams(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias):
        n = x.shape[0]
        xe = np.zeros((n, WP * WP * C), np.float32)
        _expand(x.reshape(n, -1).numpy(), LANES, xe)
        w = np.ascontiguousarray(weight.detach().numpy().T).reshape(-1)  # (16, 25) -> tap-major
        pooled, argmax = np.empty((n, CELLS * C), np.float32), np.empty((n, CELLS * C), np.int32)
        streams_forward(xe, w, bias.detach().contiguous().numpy(), pooled, argmax)
        ctx.arrays = (xe, pooled, argmax)
        return torch.from_numpy(np.ascontiguousarray(pooled.reshape(n, PS, PS, C).transpose(0, 3, 1, 2)))

    @staticmethod
    def backward(ctx, g):
        xe, pooled, argmax = ctx.arrays
        dw, db = np.zeros((C, K * K)), np.zeros(C)
        streams_backward(xe, pooled, argmax, g.permute(0, 2, 3, 1).reshape(len(xe), -1).contiguous().numpy(), dw, db)
        return None, torch.from_numpy(dw.astype(np.float32)), torch.from_numpy(db.astype(np.float32))


def pooled_streams(x: torch.Tensor, weights: list[torch.Tensor], biases: list[torch.Tensor]) -> torch.Tensor:
    """(n, 3, 42, 42) float32 on the CPU -> (n, 16, 7, 7): the three streams (weights (c, 1, 5, 5),
    c = 3, 5, 8; biases (c,)), ReLU and both poolings; differentiable in the weights and biases."""
    weight = torch.cat([w.reshape(len(w), K * K) for w in weights])
    return _Streams.apply(x.detach().float().contiguous(), weight, torch.cat(biases))


@functools.cache
def compiled() -> bool:
    """Whether numba compiles the kernels here (:func:`merkit.models.simd.compiles`)."""

    def trial():
        weights = [torch.zeros(c, 1, K, K, requires_grad=True) for c in STREAMS]
        biases = [torch.zeros(c, requires_grad=True) for c in STREAMS]
        pooled_streams(torch.zeros(1, 3, SIDE, SIDE), weights, biases).sum().backward()

    return compiles(trial, "SOFTNet's fused kernel")


def handles(x: torch.Tensor) -> bool:
    """Whether the kernel can run on ``x``: float32 (n, 3, 42, 42) on the CPU, and numba working."""
    return x.device.type == "cpu" and tuple(x.shape[1:]) == (3, SIDE, SIDE) and compiled()
