"""STSTNet's features in one pass per clip: convolution (3x3, padding 2), ReLU, batch
normalisation with the batch's statistics, 3x3 max pooling (stride 3, padding 1), dropout,
2x2 average pooling.

The same function as PyTorch's ``avg_pool2d(dropout(max_pool2d(norm(relu(conv(x))))))`` (tested
to agree to 1e-5 of a float64 reference; dropout draws from its own generator), computed by ``stem.c`` without writing the full-resolution maps more than once: pooling comes
before the normalisation, which per map is an increasing affine function (or decreasing, where
its scale is negative: those maps are pooled on -r), so the maximum is taken on r and only the
pooled values are normalised. The backward pass needs, per map, the gradient of the loss
through the batch mean and variance (a + k r where r > 0) plus the pooled gradient at each
window's maximum; the kernel sums their products with the input patches into the weight and
bias gradients. Dropout's mask is drawn in C (splitmix64) from a seed PyTorch's generator
gives. Training only (evaluation uses the running statistics, in PyTorch).
"""

from __future__ import annotations

import ctypes
import functools

import torch
from torch import nn
from torch.nn import functional as F

from merkit.models.kernels import load


def _pointer(t: torch.Tensor):
    return ctypes.c_void_p(t.data_ptr())


_P, _I, _F = ctypes.c_void_p, ctypes.c_int, ctypes.c_float
SIGNATURES = {  # argument types of stem.c's functions
    "stem_forward": [_P, _I, _I, _I] + [_P] * 8,
    "stem_backward": [_P, _I, _I, _I] + [_P] * 8,
    "head_forward": [_P, _I, _I, _I] + [_P] * 5 + [_F, ctypes.c_uint64] + [_P] * 3,
    "head_backward": [_P, _I, _I, _I] + [_P] * 9,
}


@functools.cache
def kernel():
    """The compiled kernel, or None where it cannot be built or would be slower than PyTorch."""
    lib = load("stem")
    if lib is None or not lib.stem_fast():
        return None
    for name, argtypes in SIGNATURES.items():
        getattr(lib, name).argtypes, getattr(lib, name).restype = argtypes, None
    return lib


def handles(x: torch.Tensor) -> bool:
    """Whether the kernel can run on ``x``: float32 on the CPU, and the kernel built."""
    return x.device.type == "cpu" and x.dtype == torch.float32 and kernel() is not None


class _FusedFeatures(torch.autograd.Function):
    """Every array handed to C is held by a name until the call returns: ctypes keeps only addresses."""

    @staticmethod
    def forward(ctx, x, weight, bias, gamma, beta, eps, drop, seed):
        lib = kernel()
        c = weight.shape[0]
        xp = F.pad(x.permute(0, 2, 3, 1), (0, 0, 2, 2, 2, 2)).contiguous()  # (B, H + 4, W + 4, 3)
        b, hp, wp, _ = xp.shape
        ho, wo = hp - 2, wp - 2
        ph, pw = (ho - 1) // 3 + 1, (wo - 1) // 3 + 1
        w = weight.detach().permute(2, 3, 1, 0).reshape(27, c).contiguous()  # row (ky, kx, q), column map
        bias, gamma_, beta_ = (t.detach().contiguous() for t in (bias, gamma, beta))
        sign = torch.where(gamma_ >= 0, 1.0, -1.0).contiguous()
        pooled = torch.empty(b, ph, pw, c)
        argmax = torch.empty(b, ph, pw, c, dtype=torch.int32)
        r = torch.empty(b, ho, wo, c)
        s1, s2 = torch.zeros(c, dtype=torch.float64), torch.zeros(c, dtype=torch.float64)
        lib.stem_forward(_pointer(xp), hp, wp, b, _pointer(w), _pointer(bias), _pointer(sign),
                         _pointer(pooled), _pointer(argmax), _pointer(r), _pointer(s1), _pointer(s2))
        n = b * ho * wo
        mean = s1 / n
        var = (s2 / n - mean * mean).clamp_min(0)
        mean32, inv = mean.float().contiguous(), torch.rsqrt(var + eps).float().contiguous()
        xhat, keep = torch.empty(b, ph, pw, c), torch.empty(b, ph, pw, c)
        out = torch.empty(b, c, ph // 2, pw // 2)
        lib.head_forward(_pointer(pooled), b, ph, pw, _pointer(sign), _pointer(mean32), _pointer(inv), _pointer(gamma_),
                         _pointer(beta_), float(drop), seed, _pointer(xhat), _pointer(keep), _pointer(out))
        ctx.save_for_backward(xp, r, argmax, xhat, keep, gamma_, inv, mean32)
        ctx.n = n
        ctx.mark_non_differentiable(mean, var)
        return out, mean, var

    @staticmethod
    def backward(ctx, g, _mean, _var):
        lib = kernel()
        xp, r, argmax, xhat, keep, gamma, inv, mean = ctx.saved_tensors
        b, ph, pw, c = xhat.shape
        g = g.contiguous()
        gp = torch.empty(b, ph, pw, c)
        dgamma, dbeta, sum_gp, sum_gp_xhat = (torch.zeros(c, dtype=torch.float64) for _ in range(4))
        lib.head_backward(_pointer(g), b, ph, pw, _pointer(xhat), _pointer(keep), _pointer(gamma), _pointer(inv),
                          _pointer(gp), _pointer(dgamma), _pointer(dbeta), _pointer(sum_gp), _pointer(sum_gp_xhat))
        dvar = -0.5 * sum_gp_xhat * inv.double()
        k = 2 * dvar / ctx.n  # the gradient through the batch variance is a + k r, where r > 0
        a = (-sum_gp / ctx.n - k * mean.double()).float().contiguous()
        k = k.float().contiguous()
        _, hp, wp, _ = xp.shape
        dw, db = torch.zeros(27, c, dtype=torch.float64), torch.zeros(c, dtype=torch.float64)
        scratch = torch.empty((hp - 2) * (wp - 2) * c)
        lib.stem_backward(_pointer(xp), hp, wp, b, _pointer(r), _pointer(a), _pointer(k),
                          _pointer(gp), _pointer(argmax), _pointer(scratch), _pointer(dw), _pointer(db))
        dweight = dw.float().view(3, 3, 3, c).permute(3, 2, 0, 1).contiguous()
        return None, dweight, db.float(), dgamma.float(), dbeta.float(), None, None, None


def fused_features(x: torch.Tensor, conv: nn.Conv2d, norm: nn.BatchNorm2d, drop: float) -> torch.Tensor:
    """avg_pool2d(dropout(max_pool2d(norm(relu(conv(x))), 3, 3, 1)), 2) in training mode,
    (B, 3, H, W) -> (B, 16, ph // 2, pw // 2), updating ``norm``'s running statistics as PyTorch
    does. The dropout mask comes from a generator seeded by PyTorch's, so a seeded run repeats."""
    if tuple(conv.weight.shape) != (16, 3, 3, 3) or conv.padding != (2, 2):
        raise ValueError("the fused kernel is built for STSTNet's 16 3x3 filters on 3 maps, padding 2")
    from merkit.models.fused_stem import run_fused

    return run_fused(_FusedFeatures, x, conv, norm, drop)
