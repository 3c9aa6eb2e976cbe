"""STSTNet's features in one pass per clip, compiled with numba: convolution (3x3, padding 2),
ReLU, batch normalisation with the batch's statistics, 3x3 max pooling (stride 3, padding 1),
dropout, 2x2 average pooling; forward and backward.

The same function as PyTorch's ``avg_pool2d(dropout(max_pool2d(norm(relu(conv(x))))))``
(tested to agree to 1e-5 of a float64 reference; dropout draws from its own generator), without
writing the full-resolution maps more than once. Pooling comes before the normalisation, which
per map is an increasing affine function (or decreasing, where its scale is negative: those maps
are pooled on -r), so the maximum is taken on r and only the pooled values are normalised. The
backward pass needs, per map, the gradient of the loss through the batch mean and variance
(``a + k r`` where r > 0) plus the pooled gradient at each window's maximum; their products with
the input patches are summed into the weight and bias gradients. Dropout's mask is drawn with
splitmix64 from a seed PyTorch's generator gives. Training only (evaluation uses the running
statistics, in PyTorch).

The 16 maps of a position are one vector (``merkit.models.simd``; channels-last layouts): each
input value, broadcast, is multiplied by the vector of its tap's 16 weights, 27 fused
multiply-adds a position. Positions are visited window by window, so a window's running maximum,
its argmax and the batch sums stay in registers. LLVM compiles the kernels for the CPU they run
on (AVX-512, AVX2, NEON) with no C compiler; ``NUMBA_CPU_NAME=haswell`` compiles for an
AVX2-only CPU. Single-threaded and in a fixed order: the same inputs on the same CPU give the
same bits. Compiled at first use in each process (about 2 s); numba's on-disk cache is not
used, as its index is a pickle and merkit loads no pickle.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from numba import njit
from torch import nn

from merkit.models.simd import add, compiles, fma, lane, load, load_one, mul, splat, store, sub, where_greater

C = 16  # STSTNet's 3 + 5 + 8 maps: one vector
SIDE = 28  # STSTNet's input
WP = SIDE + 4  # the padded side
HO = WO = SIDE + 2  # the convolution's output
PH = PW = (HO - 1) // 3 + 1  # the pooled maps (even: the average pooling takes every value)
P = PH * PW  # pooled positions
TAPS = 27  # (ky, kx, q)
GAMMA = np.uint64(0x9E3779B97F4A7C15)
MIX1, MIX2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


@njit(nogil=True)
def _pad(x, xs):
    """xs (nb, WP * WP * 3) zeros <- x (nb, 3, SIDE, SIDE) padded by 2 on every side, channels last."""
    for n in range(x.shape[0]):
        for i in range(SIDE):
            for j in range(SIDE):
                for q in range(3):
                    xs[n, ((i + 2) * WP + j + 2) * 3 + q] = x[n, q, i, j]


@njit(nogil=True, inline="always")
def _tap_vectors(w):
    """The 27 taps' weight vectors, w (27 * 16) -> a tuple, to be held in registers."""
    return (
        load(w, 0),
        load(w, 16),
        load(w, 32),
        load(w, 48),
        load(w, 64),
        load(w, 80),
        load(w, 96),
        load(w, 112),
        load(w, 128),
        load(w, 144),
        load(w, 160),
        load(w, 176),
        load(w, 192),
        load(w, 208),
        load(w, 224),
        load(w, 240),
        load(w, 256),
        load(w, 272),
        load(w, 288),
        load(w, 304),
        load(w, 320),
        load(w, 336),
        load(w, 352),
        load(w, 368),
        load(w, 384),
        load(w, 400),
        load(w, 416),
    )


@njit(nogil=True, inline="always")
def _conv_relu(xs, i, j, taps, bias, zero):
    """ReLU(convolution) of the 16 maps at output (i, j): each kernel row's nine inputs (kx, q)
    are consecutive in the padded clip; one chain of fused multiply-adds per row."""
    top = (i * WP + j) * 3
    middle, bottom = top + WP * 3, top + 2 * WP * 3
    row0, row1, row2 = bias, zero, zero
    for m in range(9):
        row0 = fma(load_one(xs, top + m), taps[m], row0)
        row1 = fma(load_one(xs, middle + m), taps[m + 9], row1)
        row2 = fma(load_one(xs, bottom + m), taps[m + 18], row2)
    total = add(add(row0, row1), row2)
    return where_greater(total, zero, total, zero)  # NaN -> 0


@njit(nogil=True)
def stem_forward(xs, w, b, sign, pooled, argmax, r, s1, s2):
    """xs (nb, WP * WP * 3) padded clips, channels last; w (27 * 16), row (ky, kx, q); b, sign
    (16) -> r (nb, HO * WO * 16) the ReLU output, pooled, argmax (nb, P * 16) sign * max(sign * r)
    over each window and its position i * WO + j; s1, s2 (16) float64 sums of r and r^2 (added to)."""
    taps, bias, signs = _tap_vectors(w), load(b, 0), load(sign, 0)
    zero, lowest = splat(np.float32(0.0)), splat(np.float32(-np.inf))
    for n in range(xs.shape[0]):
        x, rn, pn, an = xs[n], r[n], pooled[n], argmax[n]
        t1, t2 = zero, zero
        for u in range(PH):
            for v in range(PW):
                best, at, w1, w2 = lowest, splat(0), zero, zero
                for di in range(3):  # window (u, v): rows 3u - 1 .. 3u + 1, columns likewise; -1 is padding
                    i = 3 * u - 1 + di
                    if i < 0:
                        continue
                    for dj in range(3):
                        j = 3 * v - 1 + dj
                        if j < 0:
                            continue
                        value = _conv_relu(x, i, j, taps, bias, zero)
                        store(rn, (i * WO + j) * C, value)
                        w1 = add(w1, value)
                        w2 = fma(value, value, w2)
                        signed = mul(signs, value)
                        at = where_greater(signed, best, splat(i * WO + j), at)  # ties: the first in scan order
                        best = where_greater(signed, best, signed, best)
                t1, t2 = add(t1, w1), add(t2, w2)
                store(pn, (u * PW + v) * C, best)
                store(an, (u * PW + v) * C, at)
        for i in range(HO):  # the last row and column, which no window covers
            for j in range(3 * PW - 1 if i < 3 * PH - 1 else 0, WO):
                value = _conv_relu(x, i, j, taps, bias, zero)
                store(rn, (i * WO + j) * C, value)
                t1 = add(t1, value)
                t2 = fma(value, value, t2)
        for k in range(C):
            s1[k] += lane(t1, k)
            s2[k] += lane(t2, k)


@njit(nogil=True)
def _draws(seed, n, drop_threshold, keep_scale, keep):
    """keep (P * 16) <- dropout's factors for clip n: position n * P + q's are splitmix64's
    outputs (n * P + q) * 8 + 1 .. 8 after ``seed``, each read as two 32-bit draws (low half
    first: maps 2 * lane, 2 * lane + 1), kept when >= the threshold."""
    start = seed + np.uint64(n * P * 8 + 1) * GAMMA
    for i in range(P * 8):
        z = start + np.uint64(i) * GAMMA
        z = (z ^ (z >> np.uint64(30))) * MIX1
        z = (z ^ (z >> np.uint64(27))) * MIX2
        z = z ^ (z >> np.uint64(31))
        keep[2 * i] = keep_scale if np.uint32(z & np.uint64(0xFFFFFFFF)) >= drop_threshold else np.float32(0.0)
        keep[2 * i + 1] = keep_scale if np.uint32(z >> np.uint64(32)) >= drop_threshold else np.float32(0.0)


@njit(nogil=True, inline="always")
def _averaged(u, v):
    """The four pooled positions the 2x2 average pooling takes into output (u, v)."""
    q = 2 * u * PW + 2 * v
    return q, q + 1, q + PW, q + PW + 1


@njit(nogil=True)
def head_forward(pooled, sign, mean, inv, gamma, beta, drop_threshold, keep_scale, seed, xhat, keep, out):
    """Normalise the pooled r (``sign * pooled``), drop out, average 2x2: pooled (nb, P * 16) ->
    out (nb, P // 4 * 16), channels last; xhat and keep (dropout's factor, 0 or 1 / (1 - drop))
    (nb, P * 16) saved for the backward pass."""
    signs, means, invs, gammas, betas = load(sign, 0), load(mean, 0), load(inv, 0), load(gamma, 0), load(beta, 0)
    quarter = splat(np.float32(0.25))
    for n in range(pooled.shape[0]):
        _draws(seed, n, drop_threshold, keep_scale, keep[n])
        for u in range(PH // 2):
            for v in range(PW // 2):
                total = splat(np.float32(0.0))
                for q in _averaged(u, v):
                    xh = mul(sub(mul(signs, load(pooled[n], q * C)), means), invs)
                    store(xhat[n], q * C, xh)
                    total = fma(load(keep[n], q * C), fma(xh, gammas, betas), total)
                store(out[n], (u * (PW // 2) + v) * C, mul(total, quarter))


@njit(nogil=True)
def head_backward(g, xhat, keep, gamma, inv, gp, dgamma, dbeta, sum_gp, sum_gp_xhat):
    """From g (nb, P // 4 * 16), channels last: gp (nb, P * 16), the gradient at each pooled value
    through its own normalisation, and the per-map float64 sums dgamma, dbeta, sum gp, sum gp *
    xhat (added to: each clip's float32 sums)."""
    scale, quarter, zero = mul(load(gamma, 0), load(inv, 0)), splat(np.float32(0.25)), splat(np.float32(0.0))
    for n in range(g.shape[0]):
        t_gamma, t_beta, t_gp, t_gp_xhat = zero, zero, zero, zero
        for u in range(PH // 2):
            for v in range(PW // 2):
                g_out = mul(load(g[n], (u * (PW // 2) + v) * C), quarter)
                for q in _averaged(u, v):
                    gy, xh = mul(load(keep[n], q * C), g_out), load(xhat[n], q * C)
                    gpk = mul(gy, scale)
                    store(gp[n], q * C, gpk)
                    t_beta, t_gamma = add(t_beta, gy), fma(gy, xh, t_gamma)
                    t_gp, t_gp_xhat = add(t_gp, gpk), fma(gpk, xh, t_gp_xhat)
        for k in range(C):
            dgamma[k] += lane(t_gamma, k)
            dbeta[k] += lane(t_beta, k)
            sum_gp[k] += lane(t_gp, k)
            sum_gp_xhat[k] += lane(t_gp_xhat, k)


@njit(nogil=True)
def stem_backward(xs, r, a, kk, gp, argmax, g, dw, db):
    """The weight and bias gradients, dw (27, 16) and db (16) float64, added to: per map the
    gradient through the batch statistics, a + k r where r > 0, plus gp (nb, P * 16) at each
    window's argmax; g (HO * WO * 16) scratch. Each kernel row's nine taps in one pass over the
    positions: nine accumulators, which fit in registers with AVX2 as with AVX-512."""
    av, kv, zero = load(a, 0), load(kk, 0), splat(np.float32(0.0))
    for n in range(xs.shape[0]):
        x, rn, gn, an = xs[n], r[n], gp[n], argmax[n]
        g[:] = 0.0
        for q in range(P):
            for k in range(C):
                g[an[q * C + k] * C + k] += gn[q * C + k]
        bias_grad = zero
        for p in range(HO * WO):
            rp = load(rn, p * C)
            gradient = where_greater(rp, zero, add(fma(kv, rp, av), load(g, p * C)), zero)
            store(g, p * C, gradient)
            bias_grad = add(bias_grad, gradient)
        for k in range(C):
            db[k] += lane(bias_grad, k)
        for ky in range(3):
            d0 = d1 = d2 = d3 = d4 = d5 = d6 = d7 = d8 = zero
            for i in range(HO):
                for j in range(WO):
                    gradient, row = load(g, (i * WO + j) * C), ((i + ky) * WP + j) * 3  # nine inputs (kx, q)
                    d0 = fma(load_one(x, row), gradient, d0)
                    d1 = fma(load_one(x, row + 1), gradient, d1)
                    d2 = fma(load_one(x, row + 2), gradient, d2)
                    d3 = fma(load_one(x, row + 3), gradient, d3)
                    d4 = fma(load_one(x, row + 4), gradient, d4)
                    d5 = fma(load_one(x, row + 5), gradient, d5)
                    d6 = fma(load_one(x, row + 6), gradient, d6)
                    d7 = fma(load_one(x, row + 7), gradient, d7)
                    d8 = fma(load_one(x, row + 8), gradient, d8)
            for k in range(C):
                for m, d in enumerate((d0, d1, d2, d3, d4, d5, d6, d7, d8)):
                    dw[ky * 9 + m, k] += lane(d, k)


@functools.cache
def compiled() -> bool:
    """Whether numba compiles the kernels here (:func:`merkit.models.simd.compiles`)."""

    def trial():
        conv, norm = nn.Conv2d(3, C, 3, padding=2), nn.BatchNorm2d(C)
        fused_features(torch.zeros(1, 3, SIDE, SIDE), conv, norm, 0.5).sum().backward()

    return compiles(trial, "STSTNet's fused kernel")


def handles(x: torch.Tensor) -> bool:
    """Whether the kernel can run on ``x``: float32 28x28 on the CPU, and numba working."""
    return x.device.type == "cpu" and x.dtype == torch.float32 and tuple(x.shape[-2:]) == (SIDE, SIDE) and compiled()


class _FusedFeatures(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, gamma, beta, eps, drop, seed):
        b = x.shape[0]
        xs = np.zeros((b, WP * WP * 3), np.float32)
        _pad(x.numpy(), xs)
        w = weight.detach().permute(2, 3, 1, 0).reshape(TAPS, C).contiguous().numpy().reshape(-1)  # row (ky, kx, q)
        bias_, gamma_, beta_ = (t.detach().contiguous().numpy() for t in (bias, gamma, beta))
        sign = np.where(gamma_ >= 0, 1.0, -1.0).astype(np.float32)
        pooled, argmax = np.empty((b, P * C), np.float32), np.empty((b, P * C), np.int32)
        r = np.empty((b, HO * WO * C), np.float32)
        s1, s2 = np.zeros(C), np.zeros(C)
        stem_forward(xs, w, bias_, sign, pooled, argmax, r, s1, s2)
        n = b * HO * WO
        mean = s1 / n
        var = np.maximum(s2 / n - mean * mean, 0.0)
        mean32, inv = mean.astype(np.float32), (1.0 / np.sqrt(var + eps)).astype(np.float32)
        xhat, keep = np.empty_like(pooled), np.empty_like(pooled)
        out = np.empty((b, P // 4 * C), np.float32)
        threshold = np.uint32(min(int(drop * 4294967296.0), 2**32 - 1))
        scale = np.float32(1.0 / (1.0 - drop) if drop > 0 else 1.0)
        head_forward(pooled, sign, mean32, inv, gamma_, beta_, threshold, scale, np.uint64(seed), xhat, keep, out)
        ctx.arrays = (xs, r, argmax, xhat, keep, gamma_, inv, mean32)
        ctx.n = n
        out = out.reshape(b, PH // 2, PW // 2, C).transpose(0, 3, 1, 2)
        return torch.from_numpy(np.ascontiguousarray(out)), torch.from_numpy(mean), torch.from_numpy(var)

    @staticmethod
    def backward(ctx, g, _mean, _var):
        xs, r, argmax, xhat, keep, gamma, inv, mean = ctx.arrays
        b = xs.shape[0]
        gp = np.empty_like(xhat)
        dgamma, dbeta, sum_gp, sum_gp_xhat = (np.zeros(C) for _ in range(4))
        g_last = g.permute(0, 2, 3, 1).contiguous().numpy().reshape(b, -1)  # channels last
        head_backward(g_last, xhat, keep, gamma, inv, gp, dgamma, dbeta, sum_gp, sum_gp_xhat)
        dvar = -0.5 * sum_gp_xhat * inv.astype(np.float64)
        k = 2 * dvar / ctx.n  # the gradient through the batch variance is a + k r, where r > 0
        a = (-sum_gp / ctx.n - k * mean.astype(np.float64)).astype(np.float32)
        dw, db = np.zeros((TAPS, C)), np.zeros(C)
        stem_backward(xs, r, a, k.astype(np.float32), gp, argmax, np.empty(HO * WO * C, np.float32), dw, db)
        dweight = torch.from_numpy(dw.astype(np.float32)).view(3, 3, 3, C).permute(3, 2, 0, 1).contiguous()
        as_tensor = lambda v: torch.from_numpy(v.astype(np.float32))  # noqa: E731
        return None, dweight, as_tensor(db), as_tensor(dgamma), as_tensor(dbeta), None, None, None


def fused_features(x: torch.Tensor, conv: nn.Conv2d, norm: nn.BatchNorm2d, drop: float) -> torch.Tensor:
    """avg_pool2d(dropout(max_pool2d(norm(relu(conv(x))), 3, 3, 1)), 2) in training mode,
    (B, 3, 28, 28) -> (B, 16, 5, 5), updating ``norm``'s running statistics as PyTorch
    does. The dropout mask comes from a generator seeded by PyTorch's, so a seeded run repeats."""
    if tuple(conv.weight.shape) != (C, 3, 3, 3) or conv.padding != (2, 2) or tuple(x.shape[-2:]) != (SIDE, SIDE):
        raise ValueError("the fused kernel is built for STSTNet's 16 3x3 filters on 3 maps of 28x28, padding 2")
    seed = int(torch.randint(0, 2**62, (1,)).item())
    out, mean, var = _FusedFeatures.apply(
        x.float().detach().contiguous(), conv.weight, conv.bias, norm.weight, norm.bias, norm.eps, drop, seed
    )
    with torch.no_grad():
        n = x.shape[0] * HO * WO
        norm.num_batches_tracked += 1
        norm.running_mean.lerp_(mean.float(), norm.momentum)
        norm.running_var.lerp_((var * n / max(n - 1, 1)).float(), norm.momentum)
    return out


def _int64(value: np.uint64) -> int:
    """A 64-bit pattern as the signed integer with the same bits (torch has no unsigned 64-bit)."""
    return int(value) - 2**64 if int(value) >= 2**63 else int(value)


def _shift_right(z: torch.Tensor, bits: int) -> torch.Tensor:
    """z >> bits as an unsigned shift, on int64: the arithmetic shift with the sign bits cleared."""
    return (z >> bits) & ((1 << (64 - bits)) - 1)


def dropout_factors(seeds: torch.Tensor, clips: int, drop: float, pooled: tuple[int, int] = (PH, PW)) -> torch.Tensor:
    """The dropout factors the kernel draws from each seed: seeds (F,) int64 -> (F, clips, 16,
    *pooled) float32 of 0 and 1 / (1 - drop), computed with torch's int64 arithmetic (products
    wrap as uint64's do) on ``seeds``' device. For training many networks at once
    (``training.lockstep``) with the masks each would draw alone."""
    device = seeds.device
    position = torch.arange(clips * pooled[0] * pooled[1], device=device, dtype=torch.int64).view(1, -1, 1)
    lane = torch.arange(8, device=device, dtype=torch.int64).view(1, 1, -1)
    z = seeds.view(-1, 1, 1) + (position * 8 + lane + 1) * _int64(GAMMA)
    z = (z ^ _shift_right(z, 30)) * _int64(MIX1)
    z = (z ^ _shift_right(z, 27)) * _int64(MIX2)
    z = z ^ _shift_right(z, 31)
    draws = torch.stack([z & 0xFFFFFFFF, _shift_right(z, 32)], dim=-1)  # (F, positions, 8, 2): low half first
    threshold = min(int(drop * 4294967296.0), 2**32 - 1)
    factors = (draws >= threshold).to(torch.float32) * (1.0 / (1.0 - drop) if drop > 0 else 1.0)
    return factors.view(len(seeds), clips, *pooled, C).permute(0, 1, 4, 2, 3)
