"""Transposed and dilated convolutions as ordinary ones on phases: no multiplications by inserted zeros.

**Transposed** (``input_dilation = s``, what :func:`jaxconv.conv_transpose2d`, ``lax.conv_transpose`` and
``conv_general_dilated(lhs_dilation=...)`` compute). Spread with ``s - 1`` zeros between neighbours, the
input meets a unit-stride kernel so that, at an output row ``p = s*m + r``, only the taps
``i = i0 + s*k`` with ``i0 = (lo - r) mod s`` land on real input rows, ``x[m + k + e]`` with
``e = (r + i0 - lo) / s``. Output phase ``r`` is thus an ordinary correlation of the un-spread input,
padded by ``(-e, ...)``, with the kernel's taps ``w[i0::s]``: ``s_h * s_w`` small convolutions doing
``1 / (s_h * s_w)`` of the spread form's products, interleaved at the end (the sub-pixel form).

**Dilated** (``dilation = d``, stride 1). At output row ``p = d*m + r`` a dilated kernel reads
``x[d*(m + i) + r]``: phase ``r`` is the undilated kernel on every ``d``-th row of the padded input. The
``d_h * d_w`` phases are moved into the batch (space-to-batch, as TensorFlow's atrous convolution), run
as one undilated convolution, and moved back.

Each phase runs through whatever core the call names (:func:`jaxconv.impls.conv` passes itself as
``run``), so ``auto`` picks per phase. Both work in ``NHWC``; an ``NCHW`` call is transposed in and out.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax import lax

from jaxconv.spec import ConvSpec

Run = Callable[[jax.Array, jax.Array, ConvSpec], jax.Array]  # run(x, w, spec) -> y, all NHWC


def transposes_by_phases(spec: ConvSpec) -> bool:
    """Whether :func:`transposed` computes ``spec``: a spread input, unit stride, an undilated kernel."""
    return spec.input_dilation != (1, 1) and spec.stride == (1, 1) and spec.dilation == (1, 1)


def dilates_by_phases(spec: ConvSpec) -> bool:
    """Whether :func:`dilated` computes ``spec``: a dilated kernel, unit stride, an un-spread input."""
    return spec.dilation != (1, 1) and spec.stride == (1, 1) and spec.input_dilation == (1, 1)


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


def phase_specs(spec: ConvSpec) -> list[ConvSpec]:
    """The ordinary convolutions :func:`transposed` or :func:`dilated` runs for ``spec``."""
    if transposes_by_phases(spec):
        return [sub for row in _transposed_phases(spec) for _, _, sub, _, _ in row if sub is not None]
    if dilates_by_phases(spec):
        return [_dilated_phases(spec)[1]]
    raise ValueError(f"phase_specs: {spec} is neither transposed nor dilated at unit stride")


def transposed(x: jax.Array, w: jax.Array, spec: ConvSpec, run: Run) -> jax.Array:
    """The convolution ``spec`` describes (``transposes_by_phases(spec)``), as ``s_h * s_w`` ordinary
    convolutions of the un-spread ``x`` interleaved; ``x``, ``w`` and the result in ``spec.layout``."""
    layout = spec.layout
    x, w, spec = _to_nhwc(x, w, spec)
    (s_h, s_w), (out_h, out_w) = spec.input_dilation, spec.output_hw
    grid = _transposed_phases(spec)
    most_h, most_w = grid[0][0][3], grid[0][0][4]  # phase (0, 0) has the most outputs
    batch, o = spec.batch, spec.out_channels
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


def _dilated_phases(spec: ConvSpec) -> tuple[tuple[int, int], ConvSpec]:
    """Rows and columns of each phase of a dilated ``spec``'s padded input (the last ones zero-filled), and
    the undilated convolution of all phases stacked in the batch."""
    (d_h, d_w), (p_h, p_w) = spec.dilation, spec.padded_hw
    rows, cols = -(-p_h // d_h), -(-p_w // d_w)
    sub = spec.replace(batch=d_h * d_w * spec.batch, input_hw=(rows, cols), pads=((0, 0), (0, 0)),
                       dilation=(1, 1))  # fmt: skip
    return (rows, cols), sub


def dilated(x: jax.Array, w: jax.Array, spec: ConvSpec, run: Run) -> jax.Array:
    """The convolution ``spec`` describes (``dilates_by_phases(spec)``), as one undilated convolution of
    the ``d_h * d_w`` phases stacked in the batch; ``x``, ``w`` and the result in ``spec.layout``."""
    layout = spec.layout
    x, w, spec = _to_nhwc(x, w, spec)
    (d_h, d_w), (p_h, p_w), (out_h, out_w) = spec.dilation, spec.padded_hw, spec.output_hw
    (top, bottom), (left, right) = spec.pads
    (rows, cols), sub = _dilated_phases(spec)
    config = ((0, 0, 0), (top, bottom + rows * d_h - p_h, 0), (left, right + cols * d_w - p_w, 0), (0, 0, 0))
    x = lax.pad(x, jnp.zeros((), x.dtype), config)
    n, c = spec.batch, spec.in_channels
    x = (
        x.reshape(n, rows, d_h, cols, d_w, c)
        .transpose(2, 4, 0, 1, 3, 5)
        .reshape(d_h * d_w * n, rows, cols, c)
    )
    y = run(x, w, sub)
    m_h, m_w, o = y.shape[1], y.shape[2], spec.out_channels
    y = y.reshape(d_h, d_w, n, m_h, m_w, o).transpose(2, 3, 0, 4, 1, 5).reshape(n, m_h * d_h, m_w * d_w, o)
    return _from_nhwc(y[:, :out_h, :out_w], layout)
