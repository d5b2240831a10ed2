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

Where every phase is the same convolution but for its taps (an ungrouped kernel whose size the stride
divides, e.g. U-Net's 2x2 stride-2 up-convolution), the phases run as one: their taps stacked along
the output channels, one convolution with ``s_h * s_w`` times the channels, then depth-to-space (the
sub-pixel convolution of Shi et al., 2016): one product with a wider matrix instead of ``s_h * s_w``
narrow ones, and one patch matrix instead of one per phase (docs/performance.md, "Depthwise, grouped,
dilated and transposed layers").

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


def _merged_spec(
    spec: ConvSpec, grid: list[list[tuple[int, int, ConvSpec | None, int, int]]]
) -> ConvSpec | None:
    """The one convolution computing every phase of ``grid`` at once, with ``s_h * s_w`` times the output
    channels, where all phases are the same ungrouped convolution but for their taps; else None."""
    subs = {sub for row in grid for _, _, sub, _, _ in row}
    if len(subs) != 1 or None in subs or spec.groups != 1:
        return None
    (sub,) = subs
    return sub.replace(out_channels=sub.out_channels * len(grid) * len(grid[0]))


def phase_specs(spec: ConvSpec) -> list[ConvSpec]:
    """The ordinary convolutions :func:`transposed` runs for ``spec``: one where the phases merge."""
    if not transposes_by_phases(spec):
        raise ValueError(f"phase_specs: {spec} is not a transposed convolution at unit stride")
    grid = _transposed_phases(spec)
    merged = _merged_spec(spec, grid)
    if merged is not None:
        return [merged]
    return [sub for row in grid for _, _, sub, _, _ in row if sub is not None]


def transposed(x: jax.Array, w: jax.Array, spec: ConvSpec, run: Run) -> jax.Array:
    """The convolution ``spec`` describes (``transposes_by_phases(spec)``), as ``s_h * s_w`` ordinary
    convolutions of the un-spread ``x`` interleaved; ``x``, ``w`` and the result in ``spec.layout``."""
    layout = spec.layout
    x, w, spec = _to_nhwc(x, w, spec)
    (s_h, s_w), (out_h, out_w) = spec.input_dilation, spec.output_hw
    grid = _transposed_phases(spec)
    most_h, most_w = grid[0][0][3], grid[0][0][4]  # phase (0, 0) has the most outputs
    batch, o = spec.batch, spec.out_channels
    merged = _merged_spec(spec, grid)
    if merged is not None:  # taps of phase (r_h, r_w) at output channels [(r_h * s_w + r_w) * O, ...)
        taps = [w[first_h::s_h, first_w::s_w] for row in grid for first_h, first_w, _, _, _ in row]
        y = run(x, jnp.concatenate(taps, axis=3), merged)  # (N, most_h, most_w, s_h * s_w * O)
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
