"""Transposed convolutions as ordinary ones on phases: no multiplications by inserted zeros.

**Transposed** (``input_dilation = s``, what :func:`jaxconv.conv_transpose2d`, ``lax.conv_transpose`` and
``conv_general_dilated(lhs_dilation=...)`` compute). Spread with ``s - 1`` zeros between neighbours, the
input meets a unit-stride kernel so that, at an output row ``p = s*m + r``, only the taps
``i = i0 + s*k`` with ``i0 = (lo - r) mod s`` land on real input rows, ``x[m + k + e]`` with
``e = (r + i0 - lo) / s``. Output phase ``r`` is thus an ordinary correlation of the un-spread input,
padded by ``(-e, ...)``, with the kernel's taps ``w[i0::s]``: ``s_h * s_w`` small convolutions doing
``1 / (s_h * s_w)`` of the spread form's products, interleaved at the end (the sub-pixel form).

A dilated kernel can be split the same way (``d^2`` undilated convolutions of every ``d``-th row and
column, stacked in the batch: TensorFlow's atrous space-to-batch). Measured, Winograd's direct dilated
form ran faster than Winograd on the phases, so ``auto`` does not split dilated calls
(docs/performance.md).

An ungrouped layer with few output channels runs its phases as one convolution (:func:`merged_plan`):
each phase's taps placed in a window common to all phases (zeros where a phase has no tap) and
stacked along the output channels, ``s_h * s_w`` times as many, then depth-to-space (the sub-pixel
convolution of Shi et al., 2016). One product with a wide matrix replaces ``s_h * s_w`` narrow ones,
and one patch matrix the phases' own; where the phases' windows differ (a 4x4 kernel at stride 2,
padding 1) the common window multiplies some zeros, up to ``MAX_MERGED_WASTE`` times the products
(docs/performance.md, "Depthwise, grouped, dilated and transposed layers").

Each phase runs through whatever core the call names (:func:`jaxconv.impls.conv` passes itself as
``run``), so ``auto`` picks per phase. It works in ``NHWC``; an ``NCHW`` call is transposed in and out.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from jaxconv.spec import ConvSpec

Run = Callable[[jax.Array, jax.Array, ConvSpec], jax.Array]  # run(x, w, spec) -> y, all NHWC


def transposes_by_phases(spec: ConvSpec) -> bool:
    """Whether :func:`transposed` computes ``spec``: a spread input, unit stride, an undilated kernel."""
    return spec.input_dilation != (1, 1) and spec.stride == (1, 1) and spec.dilation == (1, 1)


def _axis_phases(n: int, k: int, s: int, lo: int, out: int) -> list[tuple[int, int, int, int, int]]:
    """Per output phase ``r < s`` of one axis: ``(first tap, taps, pad low, pad high, outputs)`` of its
    ordinary correlation over the un-spread input (``taps`` may be 0, ``pads`` negative: a crop)."""
    phases = []
    for r in range(s):
        first = (lo - r) % s
        taps = len(range(first, k, s))
        e = (r + first - lo) // s
        outputs = len(range(r, out, s))
        phases.append((first, taps, -e, outputs + e + taps - 1 - n, outputs))
    return phases


def _to_nhwc(x: jax.Array, w: jax.Array, spec: ConvSpec) -> tuple[jax.Array, jax.Array, ConvSpec]:
    if spec.layout == "NHWC":
        return x, w, spec
    return x.transpose(0, 2, 3, 1), w.transpose(2, 3, 1, 0), spec.replace(layout="NHWC")


def _from_nhwc(y: jax.Array, layout: str) -> jax.Array:
    return y.transpose(0, 3, 1, 2) if layout == "NCHW" else y


def _transposed_phases(spec: ConvSpec) -> list[list[tuple[int, int, ConvSpec | None, int, int]]]:
    """Rows of ``(first tap h, first tap w, the phase's spec or None where no tap reaches it, outputs h,
    outputs w)``, one per output phase ``(r_h, r_w)`` of a transposed ``spec``."""
    (n_h, n_w), (k_h, k_w), (s_h, s_w) = spec.input_hw, spec.kernel, spec.input_dilation
    (out_h, out_w), ((lo_h, _), (lo_w, _)) = spec.output_hw, spec.pads
    grid = []
    for first_h, taps_h, top, bottom, m_h in _axis_phases(n_h, k_h, s_h, lo_h, out_h):
        row = []
        for first_w, taps_w, left, right, m_w in _axis_phases(n_w, k_w, s_w, lo_w, out_w):
            sub = None
            if taps_h and taps_w and m_h and m_w:
                sub = spec.replace(
                    kernel=(taps_h, taps_w), pads=((top, bottom), (left, right)), input_dilation=(1, 1),
                    transposed=False,
                )  # fmt: skip
            row.append((first_h, first_w, sub, m_h, m_w))
        grid.append(row)
    return grid


# Merging the phases pays where their own products are narrow (measured up to 128 output channels,
# with up to a 4x4 kernel's waste at stride 2: MAX_MERGED_WASTE); the rule stops where it was measured.
MAX_MERGED_OUT_CHANNELS = 128
MAX_MERGED_WASTE = 2.25


def _merged_axis(
    phases: list[tuple[int, int, int, int, int]], s: int
) -> tuple[int, int, list[list[int | None]]]:
    """One axis of the merged convolution: its window's first input offset and size, and per window tap
    ``u`` and phase ``r`` the kernel tap that phase ``r`` applies there (None: a zero)."""
    reach = [(-top, -top + taps - 1) for _, taps, top, _, _ in phases if taps]  # input offsets used
    low, high = min(r[0] for r in reach), max(r[1] for r in reach)
    taps_at = [
        [first + s * (low + u + top) if taps and 0 <= low + u + top < taps else None
         for first, taps, top, _, _ in phases]
        for u in range(high - low + 1)
    ]  # fmt: skip
    return low, high - low + 1, taps_at


def merged_plan(spec: ConvSpec) -> tuple[ConvSpec, list[list[int | None]], list[list[int | None]]] | None:
    """The one ordinary convolution computing every phase of a transposed ``spec`` at once, and per axis
    its window's taps (:func:`_merged_axis`), or None where ``spec`` runs phase by phase (grouped, wide, or
    more than ``MAX_MERGED_WASTE`` times the phases' products)."""
    (n_h, n_w), (k_h, k_w), (s_h, s_w) = spec.input_hw, spec.kernel, spec.input_dilation
    (out_h, out_w), ((lo_h, _), (lo_w, _)) = spec.output_hw, spec.pads
    if spec.groups != 1 or spec.out_channels > MAX_MERGED_OUT_CHANNELS:
        return None
    axis_h = _axis_phases(n_h, k_h, s_h, lo_h, out_h)
    axis_w = _axis_phases(n_w, k_w, s_w, lo_w, out_w)
    if not any(taps for _, taps, *_ in axis_h) or not any(taps for _, taps, *_ in axis_w):
        return None  # no tap reaches any output: the phases' zeros
    (low_h, size_h, taps_h), (low_w, size_w, taps_w) = _merged_axis(axis_h, s_h), _merged_axis(axis_w, s_w)
    if size_h * size_w * s_h * s_w > MAX_MERGED_WASTE * k_h * k_w:
        return None
    most_h, most_w = axis_h[0][4], axis_w[0][4]  # phase 0 has the most outputs
    pads = ((-low_h, most_h - 1 + low_h + size_h - 1 - (n_h - 1)),
            (-low_w, most_w - 1 + low_w + size_w - 1 - (n_w - 1)))  # fmt: skip
    merged = spec.replace(kernel=(size_h, size_w), pads=pads, input_dilation=(1, 1), transposed=False,
                          out_channels=spec.out_channels * s_h * s_w)  # fmt: skip
    return merged, taps_h, taps_w


def _merged_kernel(w: jax.Array, taps_h: list[list[int | None]], taps_w: list[list[int | None]]) -> jax.Array:
    """``w (kh, kw, C, O)`` spread over the merged window, ``(size_h, size_w, C, s_h * s_w * O)``: phase
    ``(r_h, r_w)``'s taps at output channels ``[(r_h * s_w + r_w) * O, ...)``, zeros where it has none."""
    zero = jnp.zeros(w.shape[2:], w.dtype)
    phases = []
    for r_h in range(len(taps_h[0])):
        for r_w in range(len(taps_w[0])):
            rows = [
                jnp.stack([zero if i is None or j is None else w[i, j] for j in (row[r_w] for row in taps_w)])
                for i in (row[r_h] for row in taps_h)
            ]
            phases.append(jnp.stack(rows))  # (size_h, size_w, C, O)
    return jnp.concatenate(phases, axis=3)


def phase_specs(spec: ConvSpec) -> list[ConvSpec]:
    """The ordinary convolutions :func:`transposed` runs for ``spec``: one where the phases merge."""
    if not transposes_by_phases(spec):
        raise ValueError(f"phase_specs: {spec} is not a transposed convolution at unit stride")
    plan = merged_plan(spec)
    if plan is not None:
        return [plan[0]]
    return [sub for row in _transposed_phases(spec) for _, _, sub, _, _ in row if sub is not None]


def transposed(x: jax.Array, w: jax.Array, spec: ConvSpec, run: Run) -> jax.Array:
    """The convolution ``spec`` describes (``transposes_by_phases(spec)``), as ``s_h * s_w`` ordinary
    convolutions of the un-spread ``x`` interleaved; ``x``, ``w`` and the result in ``spec.layout``."""
    layout = spec.layout
    x, w, spec = _to_nhwc(x, w, spec)
    (s_h, s_w), (out_h, out_w) = spec.input_dilation, spec.output_hw
    grid = _transposed_phases(spec)
    most_h, most_w = grid[0][0][3], grid[0][0][4]  # phase (0, 0) has the most outputs
    batch, o = spec.batch, spec.out_channels
    plan = merged_plan(spec)
    if plan is not None:
        merged, taps_h, taps_w = plan
        y = run(x, _merged_kernel(w, taps_h, taps_w), merged)  # (N, most_h, most_w, s_h * s_w * O)
        y = y.reshape(batch, most_h, most_w, s_h, s_w, o).transpose(0, 1, 3, 2, 4, 5)
        y = y.reshape(batch, most_h * s_h, most_w * s_w, o)[:, :out_h, :out_w]
        return _from_nhwc(y, layout)
    interleaved = []
    for row in grid:
        ys = []
        for first_h, first_w, sub, m_h, m_w in row:
            if sub is None:
                y = jnp.zeros((batch, m_h, m_w, o), x.dtype)  # no tap reaches this phase
            else:
                y = run(x, w[first_h::s_h, first_w::s_w], sub)
            ys.append(jnp.pad(y, ((0, 0), (0, most_h - m_h), (0, most_w - m_w), (0, 0))))
        interleaved.append(jnp.stack(ys, axis=3))  # (N, most_h, most_w, s_w, O)
    y = jnp.stack(interleaved, axis=2)  # (N, most_h, s_h, most_w, s_w, O)
    y = y.reshape(batch, most_h * s_h, most_w * s_w, o)[:, :out_h, :out_w]
    return _from_nhwc(y, layout)
