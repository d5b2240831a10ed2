"""Independent float64 NumPy loop references for the jaxconv tests (JAX keeps lax_reference.py).

Written straight from the definitions with explicit Python loops, sharing no code with jaxconv:
padding forms are resolved here again, so a bug in jaxconv's own resolution cannot hide.
"""

from __future__ import annotations

import math
import re

import numpy as np

# Per-dtype tolerance, relative to the largest magnitude of the expected array (JAX's
# public_test_util keeps its tolerances in one table too).
TOLERANCE = {
    "float64": 1e-12,
    "float32": 1e-5,
    "float16": 2e-3,
    "bfloat16": 2e-2,
}
GRAD_TOLERANCE = {"float64": 1e-6, "float32": 2e-3}
# Winograd's F(4, r) transforms scale float32 rounding by the size of their interpolation points
# (up to 5x5 kernels: 0, +-1, +-1/2, +-2): against the float64 loop its forward error reached
# 1.15e-5 of max |y| in 150 random cases of test_winograd's options (median 1.1e-6; im2col's at
# most 4.2e-7), past the 1e-5 of the direct forms. Its float32 checks allow 5e-5.
WINOGRAD_FLOAT32_TOLERANCE = 5e-5


def float32_tolerance(impl: str) -> float:
    """The forward float32 tolerance for ``impl``: :data:`WINOGRAD_FLOAT32_TOLERANCE` for winograd,
    ``TOLERANCE["float32"]`` for the rest."""
    return WINOGRAD_FLOAT32_TOLERANCE if impl == "winograd" else TOLERANCE["float32"]


def assert_close(actual, expected, dtype: str = "float32", tol: float | None = None) -> None:
    """Max abs error <= tol * max(1, max |expected|): a relative error that ignores near-zeros."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"shape {actual.shape} != {expected.shape}"
    tol = TOLERANCE[dtype] if tol is None else tol
    scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    err = float(np.max(np.abs(actual - expected), initial=0.0))
    assert err <= tol * scale, f"max abs error {err:.3g} > {tol:g} * {scale:.3g}"


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def explicit_pads(padding, in_hw, k_eff, stride):
    """((top, bottom), (left, right)) for every padding form jaxconv accepts."""
    if isinstance(padding, str):
        if padding.lower() == "valid":
            return ((0, 0), (0, 0))
        pads = []
        for n, k, s in zip(in_hw, k_eff, stride, strict=True):
            out = math.ceil(n / s)
            total = max((out - 1) * s + k - n, 0)
            pads.append((total // 2, total - total // 2))
        return tuple(pads)
    if isinstance(padding, int):
        return ((padding, padding), (padding, padding))
    if isinstance(padding[0], int):
        return ((padding[0], padding[0]), (padding[1], padding[1]))
    return tuple(tuple(p) for p in padding)


def _padded_input(x, w, stride, padding, dilation):
    """``x`` in float64, zero-padded by ``padding`` (conv2d's forms) for ``w``'s dilated extent, and its pads."""
    x = np.asarray(x, np.float64)
    (dh, dw), (kh, kw) = _pair(dilation), w.shape[2:]
    n, c, h, wd = x.shape
    k_eff = ((kh - 1) * dh + 1, (kw - 1) * dw + 1)
    (pt, pb), (pl, pr) = explicit_pads(padding, (h, wd), k_eff, _pair(stride))
    xp = np.zeros((n, c, h + pt + pb, wd + pl + pr))
    xp[:, :, pt : pt + h, pl : pl + wd] = x
    return xp, ((pt, pb), (pl, pr))


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """NCHW, weight OIHW, loops over every output element and every kernel tap, in float64."""
    w = np.asarray(w, np.float64)
    sh, sw = _pair(stride)
    dh, dw = _pair(dilation)
    o, cpg, kh, kw = w.shape
    k_eff = ((kh - 1) * dh + 1, (kw - 1) * dw + 1)
    xp, _ = _padded_input(x, w, stride, padding, dilation)
    n = xp.shape[0]
    oh = (xp.shape[2] - k_eff[0]) // sh + 1
    ow = (xp.shape[3] - k_eff[1]) // sw + 1
    opg = o // groups
    y = np.zeros((n, o, oh, ow))
    for bi in range(n):
        for oc in range(o):
            g = oc // opg
            for i in range(oh):
                for j in range(ow):
                    acc = 0.0
                    for ci in range(cpg):
                        for u in range(kh):
                            for v in range(kw):
                                acc += (
                                    xp[bi, g * cpg + ci, i * sh + u * dh, j * sw + v * dw] * w[oc, ci, u, v]
                                )
                    y[bi, oc, i, j] = acc + (0.0 if b is None else float(b[oc]))
    return y


def pool2d(x, mode, window, stride=None, padding=0, count_include_pad=True):
    """NCHW max/avg pooling by loops in float64; max ignores pads, avg counts them if asked."""
    x = np.asarray(x, np.float64)
    kh, kw = _pair(window)
    sh, sw = (kh, kw) if stride is None else _pair(stride)
    n, c, h, wd = x.shape
    (pt, pb), (pl, pr) = explicit_pads(padding, (h, wd), (kh, kw), (sh, sw))
    oh = (h + pt + pb - kh) // sh + 1
    ow = (wd + pl + pr - kw) // sw + 1
    y = np.zeros((n, c, oh, ow))
    for bi in range(n):
        for ci in range(c):
            for i in range(oh):
                for j in range(ow):
                    vals = []
                    for u in range(kh):
                        for v in range(kw):
                            r, q = i * sh + u - pt, j * sw + v - pl
                            if 0 <= r < h and 0 <= q < wd:
                                vals.append(x[bi, ci, r, q])
                    if mode == "max":
                        y[bi, ci, i, j] = max(vals)
                    else:
                        y[bi, ci, i, j] = sum(vals) / (kh * kw if count_include_pad else len(vals))
    return y


def conv_transpose2d(x, w, b=None, stride=1, padding=0, output_padding=0, dilation=1, groups=1):
    """PyTorch's transposed convolution by its scatter definition, in float64: every input element
    adds ``x * w`` into the output window it came from. ``w`` is ``(C_in, C_out/groups, kh, kw)``."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    (sh, sw), (ph, pw), (oph, opw), (dh, dw) = (_pair(v) for v in (stride, padding, output_padding, dilation))
    n, c, h, wd = x.shape
    _, opg, kh, kw = w.shape
    oh = (h - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1
    ow = (wd - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1
    cpg = c // groups
    y = np.zeros((n, opg * groups, oh, ow))
    for ci in range(c):
        g = ci // cpg
        for i in range(h):
            for j in range(wd):
                for ki in range(kh):
                    for kj in range(kw):
                        r, q = i * sh - ph + ki * dh, j * sw - pw + kj * dw
                        if 0 <= r < oh and 0 <= q < ow:
                            y[:, g * opg : (g + 1) * opg, r, q] += x[:, ci, i, j, None] * w[ci, :, ki, kj]
    if b is not None:
        y += np.asarray(b, np.float64)[None, :, None, None]
    return y


def pool2d_torch(x, mode, window, stride, padding=0, dilation=1, ceil_mode=False, count_include_pad=True,
                 divisor_override=None):  # fmt: skip
    """PyTorch's max/avg pooling (symmetric int padding) written from its documentation, in float64
    loops: output size with ceil_mode's rule, dilated max windows, avg divisors clipped to the padding."""
    x = np.asarray(x, np.float64)
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = (_pair(v) for v in (window, stride, padding, dilation))
    n, c, h, w = x.shape

    def out_size(size, k, s, p, d):
        num = size + 2 * p - d * (k - 1) - 1
        o = (-(-num // s) if ceil_mode else num // s) + 1
        if ceil_mode and (o - 1) * s >= size + p:
            o -= 1
        return o

    oh, ow = out_size(h, kh, sh, ph, dh), out_size(w, kw, sw, pw, dw)
    y = np.zeros((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            r0, c0 = i * sh - ph, j * sw - pw
            if mode == "max":
                rows = [r0 + a * dh for a in range(kh) if 0 <= r0 + a * dh < h]
                cols = [c0 + b * dw for b in range(kw) if 0 <= c0 + b * dw < w]
                window = x[:, :, rows][:, :, :, cols]  # a dilated window may hold only padding: -inf
                y[:, :, i, j] = window.max(axis=(2, 3)) if window.size else -np.inf
            else:
                r1, c1 = min(r0 + kh, h + ph), min(c0 + kw, w + pw)
                pool_size = (r1 - r0) * (c1 - c0)
                ra, rb, ca, cb = max(r0, 0), min(r1, h), max(c0, 0), min(c1, w)
                total = x[:, :, ra:rb, ca:cb].sum(axis=(2, 3))
                divisor = divisor_override or (pool_size if count_include_pad else (rb - ra) * (cb - ca))
                y[:, :, i, j] = total / divisor
    return y


def max_pool2d_grad(x, dy, window, stride, padding=0, dilation=1):
    """The gradient of NCHW max pooling (symmetric int padding, floor mode) by float64 loops: each
    window's ``dy`` goes to its first largest element in row-major window order, pads never chosen
    (``reduce_window``'s ``select_and_scatter`` and PyTorch's rule)."""
    x, dy = np.asarray(x, np.float64), np.asarray(dy, np.float64)
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = (_pair(v) for v in (window, stride, padding, dilation))
    n, c, h, w = x.shape
    dx = np.zeros_like(x)
    for b in range(n):
        for ch in range(c):
            for i in range(dy.shape[2]):
                for j in range(dy.shape[3]):
                    best = None
                    for u in range(kh):
                        for v in range(kw):
                            r, q = i * sh - ph + u * dh, j * sw - pw + v * dw
                            if (
                                0 <= r < h
                                and 0 <= q < w
                                and (best is None or x[b, ch, r, q] > x[b, ch, *best])
                            ):
                                best = (r, q)
                    if best is not None:
                        dx[b, ch, *best] += dy[b, ch, i, j]
    return dx


def conv2d_grads(x, w, dy, stride=1, padding=0, dilation=1, groups=1):
    """``(dL/dx, dL/dw)`` of :func:`conv2d` (no bias) given ``dy = dL/dy``, NCHW / OIHW, by float64 loops:
    every product ``xp[n, c, i*s + u*d, j*s + v*d] * w[o, ci, u, v]`` that made ``y[n, o, i, j]`` sends
    ``dy[n, o, i, j]`` back to both of its factors."""
    w, dy = np.asarray(w, np.float64), np.asarray(dy, np.float64)
    sh, sw = _pair(stride)
    dh, dw = _pair(dilation)
    n, _, h, wd = np.shape(x)
    o, cpg, kh, kw = w.shape
    xp, ((pt, _), (pl, _)) = _padded_input(x, w, stride, padding, dilation)
    dxp, dwt = np.zeros_like(xp), np.zeros_like(w)
    opg = o // groups
    for bi in range(n):
        for oc in range(o):
            g = oc // opg
            for i in range(dy.shape[2]):
                for j in range(dy.shape[3]):
                    for ci in range(cpg):
                        for u in range(kh):
                            for v in range(kw):
                                r, q = i * sh + u * dh, j * sw + v * dw
                                dxp[bi, g * cpg + ci, r, q] += dy[bi, oc, i, j] * w[oc, ci, u, v]
                                dwt[oc, ci, u, v] += dy[bi, oc, i, j] * xp[bi, g * cpg + ci, r, q]
    return dxp[:, :, pt : pt + h, pl : pl + wd], dwt


def hlo_computations(hlo: str) -> dict[str, str]:
    """A compiled module's text split into its computations, by name (``%fused_computation.3``, ...)."""
    return {body.split(" ", 1)[0]: body for body in re.split(r"\n(?=%|ENTRY)", hlo)}
