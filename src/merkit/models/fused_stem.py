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

Each map is computed over a "wide" grid: the padded clip's planes are flat rows of ``wp`` values,
and output position ``i * wp + j`` reads input ``(i + ky) * wp + j + kx``, a constant offset per
tap, for every column j of the padded width (the two last columns are not outputs; they are set
to 0). So every loop runs over long contiguous rows, where LLVM vectorises at the host's width
(AVX2, AVX-512, NEON) with no C compiler needed. Single-threaded and in a fixed order: the same
inputs on the same CPU give the same bits. ``NUMBA_CPU_NAME=haswell`` compiles for an AVX2-only
CPU. Compiled at first use in each process (about 2 s); numba's on-disk cache is not used, as its
index is a pickle and merkit loads no pickle.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from numba import njit
from torch import nn

C = 16  # STSTNet's 3 + 5 + 8 maps
SIDE = 28  # STSTNet's input; compile-time sizes let LLVM vectorise the row loops (3-7x faster here)
WP = SIDE + 4  # the padded width, and the wide grid's
HO = WO = SIDE + 2  # the convolution's output
PH = PW = (HO - 1) // 3 + 1  # the pooled maps
GAMMA = np.uint64(0x9E3779B97F4A7C15)
MIX1, MIX2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
# Multiply-adds may be fused (FMA, as a C compiler does by default); the sums over positions
# (batch statistics, weight gradients) may also be reordered so that LLVM vectorises them.
FMA = {"contract"}
SUMS = {"contract", "reassoc", "nsz", "arcp"}


@njit(nogil=True, fastmath=FMA)
def _conv_pair(xs, w, bias, first, second):
    """first, second (HO * WP) <- two maps' convolutions on the wide grid: position i * WP + j for
    every column j < WP of the padded width (the last two columns are not outputs); xs (3, WP *
    WP + 2) the padded planes, flat; w (2, 3, 3, 3) the two filters (q, ky, kx); bias (2). Two maps
    a pass share the nine input reads of each position."""
    first[:] = bias[0]
    second[:] = bias[1]
    a, b = WP, 2 * WP
    for q in range(3):
        x = xs[q]
        f0, f1, f2, f3, f4, f5, f6, f7, f8 = (w[0, q, 0, 0], w[0, q, 0, 1], w[0, q, 0, 2], w[0, q, 1, 0], w[0, q, 1, 1],
                                              w[0, q, 1, 2], w[0, q, 2, 0], w[0, q, 2, 1], w[0, q, 2, 2])
        s0, s1, s2, s3, s4, s5, s6, s7, s8 = (w[1, q, 0, 0], w[1, q, 0, 1], w[1, q, 0, 2], w[1, q, 1, 0], w[1, q, 1, 1],
                                              w[1, q, 1, 2], w[1, q, 2, 0], w[1, q, 2, 1], w[1, q, 2, 2])
        for p in range(HO * WP):
            x0, x1, x2, x3, x4 = x[p], x[p + 1], x[p + 2], x[p + a], x[p + a + 1]
            x5, x6, x7, x8 = x[p + a + 2], x[p + b], x[p + b + 1], x[p + b + 2]
            first[p] += f0 * x0 + f1 * x1 + f2 * x2 + f3 * x3 + f4 * x4 + f5 * x5 + f6 * x6 + f7 * x7 + f8 * x8
            second[p] += s0 * x0 + s1 * x1 + s2 * x2 + s3 * x3 + s4 * x4 + s5 * x5 + s6 * x6 + s7 * x7 + s8 * x8


@njit(nogil=True, fastmath=SUMS)
def _sums(r):
    """(sum, sum of squares) of a float32 row, in float32 (reordered: vectorised)."""
    s1 = np.float32(0.0)
    s2 = np.float32(0.0)
    for p in range(r.shape[0]):
        s1 += r[p]
        s2 += r[p] * r[p]
    return s1, s2


@njit(nogil=True)
def stem_forward(xs, w, bias, sign, pooled, argmax, r, s1, s2):
    """xs (nb, 3, WP * WP + 2) padded clips, flat; w (16, 3, 3, 3); bias, sign (16) -> r (nb,
    16, HO * WP) the ReLU output on the wide grid (0 off the outputs), pooled, argmax (nb, 16,
    PH, PW) (argmax a wide position), s1, s2 (16) float64 sums of r and r^2 (added to)."""
    nb, c, _ = r.shape
    best_in_column, row_of_best = np.empty(WO, np.float32), np.empty(WO, np.int32)
    for n in range(nb):
        for k in range(0, c, 2):
            _conv_pair(xs[n], w[k:k + 2], bias[k:k + 2], r[n, k], r[n, k + 1])
        for k in range(c):
            row = r[n, k]
            for p in range(HO * WP):
                row[p] = row[p] if row[p] > 0 else np.float32(0.0)  # ReLU (NaN -> 0)
            for i in range(HO):
                row[i * WP + WO] = row[i * WP + WO + 1] = 0.0  # off the outputs
            t1, t2 = _sums(row)
            s1[k] += t1
            s2[k] += t2
            _pool_map(row, sign[k], best_in_column, row_of_best, pooled[n, k], argmax[n, k])


@njit(nogil=True)
def _pool_map(row, sign, best_in_column, row_of_best, pooled, argmax):
    """3x3 max pooling (stride 3, padding 1) of ``sign * row`` (the wide grid): pooled, argmax
    (PH, PW) the maximum and its wide position. The windows tile the map: window u takes rows
    3u - 1, 3u, 3u + 1 (the first row twice for u = 0, where -1 is padding), and likewise for
    columns. Each window row is reduced over its three rows for all columns at once (a loop LLVM
    vectorises), then over each window's three columns; ties go to the first row, then the first
    column (where r = 0 ties, the gradient is 0 either way)."""
    for u in range(PH):
        top, middle, bottom = max(3 * u - 1, 0) * WP, 3 * u * WP, (3 * u + 1) * WP
        for j in range(WO):
            a, b, c = sign * row[top + j], sign * row[middle + j], sign * row[bottom + j]
            best, at = a, top + j
            if b > best:
                best, at = b, middle + j
            if c > best:
                best, at = c, bottom + j
            best_in_column[j] = best
            row_of_best[j] = at
        for v in range(PW):
            left, centre, right = max(3 * v - 1, 0), 3 * v, 3 * v + 1
            best, at = best_in_column[left], row_of_best[left]
            if best_in_column[centre] > best:
                best, at = best_in_column[centre], row_of_best[centre]
            if best_in_column[right] > best:
                best, at = best_in_column[right], row_of_best[right]
            pooled[u, v] = best
            argmax[u, v] = at


@njit(nogil=True)
def _keep(seed, position, drop_threshold, keep_scale, out):
    """out (16) <- dropout's factors at ``position``: splitmix64 outputs position * 8 + 1 .. 8
    after ``seed``, each read as two 32-bit draws (low half first), kept when >= the threshold."""
    for lane in range(8):
        z = seed + (np.uint64(position) * np.uint64(8) + np.uint64(lane + 1)) * GAMMA
        z = (z ^ (z >> np.uint64(30))) * MIX1
        z = (z ^ (z >> np.uint64(27))) * MIX2
        z = z ^ (z >> np.uint64(31))
        low = np.uint32(z & np.uint64(0xFFFFFFFF))
        high = np.uint32(z >> np.uint64(32))
        out[2 * lane] = keep_scale if low >= drop_threshold else np.float32(0.0)
        out[2 * lane + 1] = keep_scale if high >= drop_threshold else np.float32(0.0)


@njit(nogil=True, fastmath=FMA)
def head_forward(pooled, sign, mean, inv, gamma, beta, drop_threshold, keep_scale, seed, xhat, keep, out):
    """Normalise the pooled r (``sign * pooled``: pooled holds sign * max(sign * r)), drop out,
    average 2x2: pooled (nb, 16, PH, PW) -> out (nb, 16, PH // 2, PW // 2); xhat and keep
    (dropout's factor, 0 or 1 / (1 - drop)) saved for the backward pass."""
    nb = pooled.shape[0]
    factors = np.empty(C, np.float32)
    for n in range(nb):
        for u in range(PH):
            for v in range(PW):
                _keep(seed, (n * PH + u) * PW + v, drop_threshold, keep_scale, factors)
                for k in range(C):
                    keep[n, k, u, v] = factors[k]
        out[n] = 0.0
        for k in range(C):
            sign_k, mean_k, inv_k, gamma_k, beta_k = sign[k], mean[k], inv[k], gamma[k], beta[k]
            for u in range(PH):
                for v in range(PW):
                    xh = (sign_k * pooled[n, k, u, v] - mean_k) * inv_k
                    xhat[n, k, u, v] = xh
                    if u < PH // 2 * 2 and v < PW // 2 * 2:
                        out[n, k, u // 2, v // 2] += np.float32(0.25) * keep[n, k, u, v] * (xh * gamma_k + beta_k)


@njit(nogil=True, fastmath=FMA)
def head_backward(g, xhat, keep, gamma, inv, gp, dgamma, dbeta, sum_gp, sum_gp_xhat):
    """From g (nb, 16, PH // 2, PW // 2): gp (nb, 16, PH, PW), the gradient at each pooled value
    through its own normalisation, and the per-map float64 sums dgamma, dbeta, sum gp, sum gp * xhat."""
    nb = xhat.shape[0]
    gp[:] = 0.0  # rows and columns the average pooling leaves out get no gradient
    for k in range(C):
        scale = gamma[k] * inv[k]
        t_gamma = t_beta = t_gp = t_gp_xhat = 0.0  # float64
        for n in range(nb):
            for u in range(PH // 2 * 2):
                for v in range(PW // 2 * 2):
                    gy = keep[n, k, u, v] * np.float32(0.25) * g[n, k, u // 2, v // 2]
                    xh = xhat[n, k, u, v]
                    gpk = gy * scale
                    gp[n, k, u, v] = gpk
                    t_beta += gy
                    t_gamma += gy * xh
                    t_gp += gpk
                    t_gp_xhat += gpk * xh
        dbeta[k] += t_beta
        dgamma[k] += t_gamma
        sum_gp[k] += t_gp
        sum_gp_xhat[k] += t_gp_xhat


@njit(nogil=True, fastmath=SUMS)
def _filter_gradient(xs, g, dw):
    """dw (3, 3, 3) += the sums over positions of g (HO * WP) times each tap's inputs; returns
    the sum of g (the bias's gradient), taken in the same pass."""
    a, b = WP, 2 * WP
    total = np.float32(0.0)
    for q in range(3):
        x = xs[q]
        d0 = d1 = d2 = d3 = d4 = d5 = d6 = d7 = d8 = total = np.float32(0.0)
        for p in range(HO * WP):
            gp = g[p]
            total += gp
            d0 += x[p] * gp
            d1 += x[p + 1] * gp
            d2 += x[p + 2] * gp
            d3 += x[p + a] * gp
            d4 += x[p + a + 1] * gp
            d5 += x[p + a + 2] * gp
            d6 += x[p + b] * gp
            d7 += x[p + b + 1] * gp
            d8 += x[p + b + 2] * gp
        dw[q, 0, 0] += d0
        dw[q, 0, 1] += d1
        dw[q, 0, 2] += d2
        dw[q, 1, 0] += d3
        dw[q, 1, 1] += d4
        dw[q, 1, 2] += d5
        dw[q, 2, 0] += d6
        dw[q, 2, 1] += d7
        dw[q, 2, 2] += d8
    return total


@njit(nogil=True, fastmath=FMA)
def stem_backward(xs, r, a, kk, gp, argmax, dw, db):
    """The weight and bias gradients, dw (16, 3, 3, 3) and db (16) float64, added to: per map
    the gradient through the batch statistics, a + k r where r > 0, plus gp (nb, 16, PH, PW) at
    each window's argmax."""
    nb, c, _ = r.shape
    g = np.empty(HO * WP, np.float32)
    filter_grad = np.empty((3, 3, 3), np.float32)
    for k in range(c):
        filter_grad[:] = 0.0
        bias_grad = np.float32(0.0)
        a_k, k_k = a[k], kk[k]  # held in registers: array reads in the loop could not be hoisted
        for n in range(nb):
            row = r[n, k]
            g[:] = 0.0
            for u in range(PH):
                for v in range(PW):
                    g[argmax[n, k, u, v]] += gp[n, k, u, v]
            for p in range(HO * WP):
                v = row[p]
                g[p] = a_k + k_k * v + g[p] if v > 0 else np.float32(0.0)
            bias_grad += _filter_gradient(xs[n], g, filter_grad)
        for q in range(3):
            for y in range(3):
                for x in range(3):
                    dw[k, q, y, x] += filter_grad[q, y, x]
        db[k] += bias_grad


@functools.cache
def compiled() -> bool:
    """Whether numba compiles the kernels here (it needs no C compiler; False only where numba
    itself fails, and then PyTorch's layers are used)."""
    try:
        with torch.random.fork_rng(devices=[]):  # the trial draws nothing from a seeded run's generator
            x = torch.zeros(1, 3, SIDE, SIDE)
            conv, norm = nn.Conv2d(3, C, 3, padding=2), nn.BatchNorm2d(C)
            fused_features(x, conv, norm, 0.5).sum().backward()
        return True
    except Exception as error:  # numba raises many kinds; PyTorch's layers compute the same function
        import warnings

        warnings.warn(f"merkit could not compile STSTNet's fused kernel with numba ({error}); PyTorch's layers are used, "
                      "which are slower.", stacklevel=2)
        return False


def handles(x: torch.Tensor) -> bool:
    """Whether the kernel can run on ``x``: float32 28x28 on the CPU, and numba working."""
    return x.device.type == "cpu" and x.dtype == torch.float32 and tuple(x.shape[-2:]) == (SIDE, SIDE) and compiled()


class _FusedFeatures(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, gamma, beta, eps, drop, seed):
        b = x.shape[0]
        xs = np.zeros((b, 3, WP * WP + 2), np.float32)  # the padded planes, flat, two spare values at the end
        xs[:, :, : WP * WP] = np.pad(x.numpy(), ((0, 0), (0, 0), (2, 2), (2, 2))).reshape(b, 3, WP * WP)
        weight_, bias_, gamma_, beta_ = (t.detach().contiguous().numpy() for t in (weight, bias, gamma, beta))
        sign = np.where(gamma_ >= 0, 1.0, -1.0).astype(np.float32)
        pooled, argmax = np.empty((b, C, PH, PW), np.float32), np.empty((b, C, PH, PW), np.int32)
        r = np.empty((b, C, HO * WP), np.float32)
        s1, s2 = np.zeros(C), np.zeros(C)
        stem_forward(xs, weight_, bias_, sign, pooled, argmax, r, s1, s2)
        n = b * HO * WO
        mean = s1 / n
        var = np.maximum(s2 / n - mean * mean, 0.0)
        mean32, inv = mean.astype(np.float32), (1.0 / np.sqrt(var + eps)).astype(np.float32)
        xhat, keep = np.empty_like(pooled), np.empty_like(pooled)
        out = np.empty((b, C, PH // 2, PW // 2), np.float32)
        threshold = np.uint32(min(int(drop * 4294967296.0), 2**32 - 1))
        scale = np.float32(1.0 / (1.0 - drop) if drop > 0 else 1.0)
        head_forward(pooled, sign, mean32, inv, gamma_, beta_, threshold, scale, np.uint64(seed), xhat, keep, out)
        ctx.arrays = (xs, r, argmax, xhat, keep, gamma_, inv, mean32)
        ctx.n = n
        return torch.from_numpy(out), torch.from_numpy(mean), torch.from_numpy(var)

    @staticmethod
    def backward(ctx, g, _mean, _var):
        xs, r, argmax, xhat, keep, gamma, inv, mean = ctx.arrays
        gp = np.empty_like(xhat)
        dgamma, dbeta, sum_gp, sum_gp_xhat = (np.zeros(C) for _ in range(4))
        head_backward(g.contiguous().numpy(), xhat, keep, gamma, inv, gp, dgamma, dbeta, sum_gp, sum_gp_xhat)
        dvar = -0.5 * sum_gp_xhat * inv.astype(np.float64)
        k = 2 * dvar / ctx.n  # the gradient through the batch variance is a + k r, where r > 0
        a = (-sum_gp / ctx.n - k * mean.astype(np.float64)).astype(np.float32)
        dw, db = np.zeros((C, 3, 3, 3)), np.zeros(C)
        stem_backward(xs, r, a, k.astype(np.float32), gp, argmax, dw, db)
        as_tensor = lambda v: torch.from_numpy(v.astype(np.float32))  # noqa: E731
        return None, as_tensor(dw), as_tensor(db), as_tensor(dgamma), as_tensor(dbeta), None, None, None


def fused_features(x: torch.Tensor, conv: nn.Conv2d, norm: nn.BatchNorm2d, drop: float) -> torch.Tensor:
    """avg_pool2d(dropout(max_pool2d(norm(relu(conv(x))), 3, 3, 1)), 2) in training mode,
    (B, 3, 28, 28) -> (B, 16, 5, 5), updating ``norm``'s running statistics as PyTorch
    does. The dropout mask comes from a generator seeded by PyTorch's, so a seeded run repeats."""
    if tuple(conv.weight.shape) != (C, 3, 3, 3) or conv.padding != (2, 2) or tuple(x.shape[-2:]) != (SIDE, SIDE):
        raise ValueError("the fused kernel is built for STSTNet's 16 3x3 filters on 3 maps of 28x28, padding 2")
    return run_fused(_FusedFeatures, x, conv, norm, drop)


def run_fused(function: type[torch.autograd.Function], x: torch.Tensor, conv: nn.Conv2d, norm: nn.BatchNorm2d, drop: float) -> torch.Tensor:
    """Apply a fused kernel (``function``: x, weight, bias, gamma, beta, eps, drop, seed -> out,
    batch mean, batch variance) and update ``norm``'s running statistics as PyTorch does."""
    seed = int(torch.randint(0, 2**62, (1,)).item())
    out, mean, var = function.apply(x.float().detach().contiguous(), conv.weight, conv.bias, norm.weight, norm.bias, norm.eps, drop, seed)
    with torch.no_grad():
        n = x.shape[0] * (x.shape[2] + 2) * (x.shape[3] + 2)
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
