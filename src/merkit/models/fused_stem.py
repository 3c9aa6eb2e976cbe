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
(AVX2, AVX-512, NEON) with no C compiler needed. Per clip, two maps at a time: their convolution
(sharing the input reads), ReLU and batch sums in one pass, then each map's pooling while it is
still in the cache; the backward pass likewise computes two maps' weight gradients from one
read of the inputs. Choices are made by arithmetic or by selects that LLVM vectorises, never by
a branch on the data. Single-threaded and in a fixed order: the same
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


LOWER = np.where(np.arange(HO * WP) % WP < WO, 0.0, np.inf).astype(np.float32)  # ReLU's threshold: +inf off the outputs
PLANE = WP * WP + 16  # a padded plane's stride: room for the taps' reads past its end, a whole number of cache lines
P = PH * PW  # pooled values per map
RS = WP + 2  # a window row's stride in the pooling's scratch: the padding column, WP columns, a spare


@njit(nogil=True)
def _pad(x, xs):
    """xs (nb, 3, PLANE) zeros <- x (nb, 3, SIDE, SIDE), padded by 2 on every side, flat."""
    for n in range(x.shape[0]):
        for q in range(3):
            for i in range(SIDE):
                for j in range(SIDE):
                    xs[n, q, (i + 2) * WP + j + 2] = x[n, q, i, j]


@njit(nogil=True, inline="always")
def _taps(w, q):
    """A filter's nine taps on input plane q: w (3, 3, 3) -> 9 scalars, row by row."""
    return w[q, 0, 0], w[q, 0, 1], w[q, 0, 2], w[q, 1, 0], w[q, 1, 1], w[q, 1, 2], w[q, 2, 0], w[q, 2, 1], w[q, 2, 2]


@njit(nogil=True, fastmath=FMA)
def _conv_first_planes(xs, w, bias, first, second):
    """first, second (HO * WP) <- two maps' bias plus their convolutions of input planes 0 and 1
    on the wide grid (position i * WP + j reads (i + ky) * WP + j + kx). Each sum is one chain of
    fused multiply-adds from the bias or the running value (9 operations a sum, not 10), and
    each pass computes two positions half the grid apart: independent chains keep both FMA units
    busy (13% faster than one position a pass)."""
    a, b, half = WP, 2 * WP, HO * WP // 2
    for q in range(2):
        x = xs[q]
        f0, f1, f2, f3, f4, f5, f6, f7, f8 = _taps(w[0], q)
        s0, s1, s2, s3, s4, s5, s6, s7, s8 = _taps(w[1], q)
        for p in range(half):
            for o in (p, p + half):
                v = bias[0] if q == 0 else first[o]
                e = bias[1] if q == 0 else second[o]
                x0, x1, x2 = x[o], x[o + 1], x[o + 2]
                v += f0 * x0; e += s0 * x0; v += f1 * x1; e += s1 * x1; v += f2 * x2; e += s2 * x2  # noqa: E702
                x3, x4, x5 = x[o + a], x[o + a + 1], x[o + a + 2]
                v += f3 * x3; e += s3 * x3; v += f4 * x4; e += s4 * x4; v += f5 * x5; e += s5 * x5  # noqa: E702
                x6, x7, x8 = x[o + b], x[o + b + 1], x[o + b + 2]
                v += f6 * x6; e += s6 * x6; v += f7 * x7; e += s7 * x7; v += f8 * x8; e += s8 * x8  # noqa: E702
                first[o] = v
                second[o] = e


@njit(nogil=True, fastmath=SUMS)
def _conv_last_plane(x, w, first, second):
    """first, second (HO * WP) <- ReLU(first, second plus the two maps' convolutions of input
    plane 2), 0 off the outputs; returns the float32 sums of values and squares (s1, s2 of the
    first map, then of the second), taken in the same pass (reordered, so vectorised)."""
    a, b = WP, 2 * WP
    f0, f1, f2, f3, f4, f5, f6, f7, f8 = _taps(w[0], 2)
    s0, s1, s2, s3, s4, s5, s6, s7, s8 = _taps(w[1], 2)
    t1 = t2 = u1 = u2 = np.float32(0.0)
    for p in range(HO * WP):
        x0, x1, x2, x3, x4 = x[p], x[p + 1], x[p + 2], x[p + a], x[p + a + 1]
        x5, x6, x7, x8 = x[p + a + 2], x[p + b], x[p + b + 1], x[p + b + 2]
        v = first[p] + (f0 * x0 + f1 * x1 + f2 * x2 + f3 * x3 + f4 * x4 + f5 * x5 + f6 * x6 + f7 * x7 + f8 * x8)
        e = second[p] + (s0 * x0 + s1 * x1 + s2 * x2 + s3 * x3 + s4 * x4 + s5 * x5 + s6 * x6 + s7 * x7 + s8 * x8)
        v = v if v > LOWER[p] else np.float32(0.0)  # ReLU (NaN -> 0); 0 off the outputs
        e = e if e > LOWER[p] else np.float32(0.0)
        first[p] = v
        second[p] = e
        t1 += v
        t2 += v * v
        u1 += e
        u2 += e * e
    return t1, t2, u1, u2


@njit(nogil=True)
def _pool_map(row, sign, column_best, column_at, window_best, window_at, pooled, argmax):
    """3x3 max pooling (stride 3, padding 1) of ``sign * row`` (the wide grid, 0 off the outputs):
    pooled, argmax (P) the maximum of each window and its wide position. Window (u, v) takes rows
    3u - 1, 3u, 3u + 1 (the first row twice for u = 0, where -1 is padding) and likewise columns.
    Every column of each window row is reduced over its three rows, then every column with its
    two neighbours; the windows are every third column of that. Both are flat loops that LLVM
    vectorises, choosing by arithmetic (``i + left * (j - i)``): a conditional read would be
    compiled as a gather, and a data-dependent branch costs more still. Ties go to the first row,
    then the first column. Scratch: column_best, column_at, window_best, window_at (PH * RS)."""
    for u in range(PH):
        top, middle, bottom = max(3 * u - 1, 0) * WP, 3 * u * WP, (3 * u + 1) * WP
        column_best[u * RS] = column_best[u * RS + RS - 1] = -np.inf  # the padding column, the spare
        for j in range(WP):
            a, b, c = sign * row[top + j], sign * row[middle + j], sign * row[bottom + j]
            lower = b > a
            best = b if lower else a
            at = np.int32(middle + j) if lower else np.int32(top + j)
            lowest = c > best
            column_best[u * RS + j + 1] = c if lowest else best
            column_at[u * RS + j + 1] = np.int32(bottom + j) if lowest else at
    for t in range(PH * RS - 4):  # a multiple of 16: no scalar remainder
        a, b, c = column_best[t], column_best[t + 1], column_best[t + 2]
        i0, i1, i2 = column_at[t], column_at[t + 1], column_at[t + 2]
        left = np.int32(b > a)
        best = max(a, b)
        at = i0 + left * (i1 - i0)
        right = np.int32(c > best)
        window_best[t] = max(best, c)
        window_at[t] = at + right * (i2 - at)
    for u in range(PH):
        for v in range(PW):
            pooled[u * PW + v] = window_best[u * RS + 3 * v]
            argmax[u * PW + v] = window_at[u * RS + 3 * v]


@njit(nogil=True)
def stem_forward(xs, w, bias, sign, pooled, argmax, r, s1, s2):
    """xs (nb, 3, PLANE) padded clips, flat; w (16, 3, 3, 3); bias, sign (16) -> r (nb,
    16, HO * WP) the ReLU output on the wide grid (0 off the outputs), pooled, argmax (nb, 16, P)
    (argmax a wide position), s1, s2 (16) float64 sums of r and r^2 (added to)."""
    nb, c, _ = r.shape
    column_best, column_at = np.empty(PH * RS, np.float32), np.zeros(PH * RS, np.int32)
    window_best, window_at = np.empty(PH * RS, np.float32), np.zeros(PH * RS, np.int32)
    for n in range(nb):
        for k in range(0, c, 2):
            _conv_first_planes(xs[n], w[k:k + 2], bias[k:k + 2], r[n, k], r[n, k + 1])
            t1, t2, u1, u2 = _conv_last_plane(xs[n, 2], w[k:k + 2], r[n, k], r[n, k + 1])
            s1[k] += t1
            s2[k] += t2
            s1[k + 1] += u1
            s2[k + 1] += u2
            for m in (k, k + 1):
                _pool_map(r[n, m], sign[m], column_best, column_at, window_best, window_at, pooled[n, m], argmax[n, m])


@njit(nogil=True)
def _draws(seed, n, drop_threshold, keep_scale, keep):
    """keep (16, P) <- dropout's factors for clip n: position n * P + q's are splitmix64's
    outputs (n * P + q) * 8 + 1 .. 8 after ``seed``, each read as two 32-bit draws (low half
    first: maps 2 * lane, 2 * lane + 1), kept when >= the threshold. One flat loop per lane, so
    the 64-bit mixing is vectorised."""
    step = np.uint64(8) * GAMMA
    for lane in range(8):
        start = seed + (np.uint64(n * P) * np.uint64(8) + np.uint64(lane + 1)) * GAMMA
        for q in range(P):
            z = start + np.uint64(q) * step
            z = (z ^ (z >> np.uint64(30))) * MIX1
            z = (z ^ (z >> np.uint64(27))) * MIX2
            z = z ^ (z >> np.uint64(31))
            low = np.uint32(z & np.uint64(0xFFFFFFFF))
            high = np.uint32(z >> np.uint64(32))
            keep[2 * lane, q] = keep_scale if low >= drop_threshold else np.float32(0.0)
            keep[2 * lane + 1, q] = keep_scale if high >= drop_threshold else np.float32(0.0)


@njit(nogil=True, fastmath=FMA)
def head_forward(pooled, sign, mean, inv, gamma, beta, drop_threshold, keep_scale, seed, xhat, keep, out):
    """Normalise the pooled r (``sign * pooled``: pooled holds sign * max(sign * r)), drop out,
    average 2x2: pooled (nb, 16, P) -> out (nb, 16, PH // 2, PW // 2); xhat and keep (dropout's
    factor, 0 or 1 / (1 - drop)) (nb, 16, P) saved for the backward pass."""
    nb = pooled.shape[0]
    y = np.empty(P, np.float32)
    for n in range(nb):
        _draws(seed, n, drop_threshold, keep_scale, keep[n])
        for k in range(C):
            sign_k, mean_k, inv_k, gamma_k, beta_k = sign[k], mean[k], inv[k], gamma[k], beta[k]
            for q in range(P):
                xh = (sign_k * pooled[n, k, q] - mean_k) * inv_k
                xhat[n, k, q] = xh
                y[q] = keep[n, k, q] * (xh * gamma_k + beta_k)
            for u in range(PH // 2):
                for v in range(PW // 2):
                    q = 2 * u * PW + 2 * v
                    out[n, k, u, v] = np.float32(0.25) * (y[q] + y[q + 1] + y[q + PW] + y[q + PW + 1])


@njit(nogil=True, fastmath=SUMS)
def head_backward(g, xhat, keep, gamma, inv, gp, dgamma, dbeta, sum_gp, sum_gp_xhat):
    """From g (nb, 16, PH // 2, PW // 2): gp (nb, 16, P), the gradient at each pooled value
    through its own normalisation, and the per-map float64 sums dgamma, dbeta, sum gp, sum gp *
    xhat (added to; each clip's float32 partial sums, vectorised)."""
    nb = xhat.shape[0]
    spread = np.zeros(P, np.float32)  # rows and columns the average pooling leaves out get no gradient
    for n in range(nb):
        for k in range(C):
            for u in range(PH // 2 * 2):
                for v in range(PW // 2 * 2):
                    spread[u * PW + v] = np.float32(0.25) * g[n, k, u // 2, v // 2]
            scale = gamma[k] * inv[k]
            t_gamma = t_beta = t_gp = t_gp_xhat = np.float32(0.0)
            for q in range(P):
                gy = keep[n, k, q] * spread[q]
                xh = xhat[n, k, q]
                gpk = gy * scale
                gp[n, k, q] = gpk
                t_beta += gy
                t_gamma += gy * xh
                t_gp += gpk
                t_gp_xhat += gpk * xh
            dbeta[k] += t_beta
            dgamma[k] += t_gamma
            sum_gp[k] += t_gp
            sum_gp_xhat[k] += t_gp_xhat


@njit(nogil=True, fastmath=SUMS)
def _map_gradient(row, a_k, k_k, gp, argmax, g):
    """g (HO * WP) <- the gradient at a map's ReLU output, where r > 0 (else 0): a + k r, plus
    gp (P) at each window's maximum (argmax (P)); returns its sum (the bias's gradient)."""
    total = np.float32(0.0)
    for p in range(HO * WP):
        v = row[p]
        g[p] = a_k + k_k * v if v > 0 else np.float32(0.0)
        total += g[p]
    for q in range(P):
        at = argmax[q]
        pooled = gp[q] if row[at] > 0 else np.float32(0.0)
        g[at] += pooled
        total += pooled
    return total


@njit(nogil=True, fastmath=SUMS)
def _filter_gradient_pair(xs, g, h, dw_g, dw_h):
    """dw_g, dw_h (3, 3, 3) float64 += the sums over positions of g, h (HO * WP) times each
    tap's inputs (two maps a pass share the input reads; float32 sums, vectorised)."""
    a, b = WP, 2 * WP
    for q in range(3):
        x = xs[q]
        d0 = d1 = d2 = d3 = d4 = d5 = d6 = d7 = d8 = np.float32(0.0)
        e0 = e1 = e2 = e3 = e4 = e5 = e6 = e7 = e8 = np.float32(0.0)
        for p in range(HO * WP):
            gp, hp = g[p], h[p]
            x0, x1, x2, x3, x4 = x[p], x[p + 1], x[p + 2], x[p + a], x[p + a + 1]
            x5, x6, x7, x8 = x[p + a + 2], x[p + b], x[p + b + 1], x[p + b + 2]
            d0 += x0 * gp
            d1 += x1 * gp
            d2 += x2 * gp
            d3 += x3 * gp
            d4 += x4 * gp
            d5 += x5 * gp
            d6 += x6 * gp
            d7 += x7 * gp
            d8 += x8 * gp
            e0 += x0 * hp
            e1 += x1 * hp
            e2 += x2 * hp
            e3 += x3 * hp
            e4 += x4 * hp
            e5 += x5 * hp
            e6 += x6 * hp
            e7 += x7 * hp
            e8 += x8 * hp
        for dw, t in ((dw_g, (d0, d1, d2, d3, d4, d5, d6, d7, d8)), (dw_h, (e0, e1, e2, e3, e4, e5, e6, e7, e8))):
            for tap in range(9):
                dw[q, tap // 3, tap % 3] += t[tap]


@njit(nogil=True)
def stem_backward(xs, r, a, kk, gp, argmax, dw, db):
    """The weight and bias gradients, dw (16, 3, 3, 3) and db (16) float64, added to: per map
    the gradient through the batch statistics, a + k r where r > 0, plus gp (nb, 16, P) at
    each window's argmax (nb, 16, P)."""
    nb, c, _ = r.shape
    g = np.empty((2, HO * WP), np.float32)
    for n in range(nb):
        for k in range(0, c, 2):
            for m in range(2):
                db[k + m] += _map_gradient(r[n, k + m], a[k + m], kk[k + m], gp[n, k + m], argmax[n, k + m], g[m])
            _filter_gradient_pair(xs[n], g[0], g[1], dw[k], dw[k + 1])


def _aligned(shape: tuple[int, ...], dtype: type) -> np.ndarray:
    """An empty array starting on a 64-byte boundary: with rows a whole number of cache lines,
    fewer of the kernels' vector reads straddle two lines (about 6% faster here)."""
    size, item = int(np.prod(shape)), np.dtype(dtype).itemsize
    buffer = np.empty(size + 64 // item, dtype)
    start = (-buffer.ctypes.data % 64) // item
    return buffer[start : start + size].reshape(shape)


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
        xs = _aligned((b, 3, PLANE), np.float32)
        xs[:] = 0.0
        _pad(x.numpy(), xs)
        weight_, bias_, gamma_, beta_ = (t.detach().contiguous().numpy() for t in (weight, bias, gamma, beta))
        sign = np.where(gamma_ >= 0, 1.0, -1.0).astype(np.float32)
        pooled, argmax = np.empty((b, C, P), np.float32), np.empty((b, C, P), np.int32)
        r = _aligned((b, C, HO * WP), np.float32)
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
