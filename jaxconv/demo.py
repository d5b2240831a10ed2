"""The chapter's worked examples, computed by both implementations (``jaxconv demo``)."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

import jaxconv as jc


def _examples() -> list[tuple[str, Callable[[str], jax.Array]]]:
    X = jnp.arange(9.0).reshape(3, 3)
    K = jnp.arange(4.0).reshape(2, 2)
    edges = jnp.ones((6, 8)).at[:, 2:6].set(0.0)
    X2, K2 = jnp.stack([X, X + 1.0]), jnp.stack([K, K + 1.0])
    X44 = jnp.arange(16.0).reshape(1, 1, 4, 4)
    return [
        ("6.2 corr2d(X, K)", lambda impl: jc.corr2d(X, K, impl=impl)),
        (
            "6.2 edge detection, K = [[1, -1]]",
            lambda impl: jc.corr2d(edges, jnp.array([[1.0, -1.0]]), impl=impl),
        ),
        ("6.2 convolve2d(X, K) (flipped kernel)", lambda impl: jc.convolve2d(X, K, impl=impl)),
        ("6.4 corr2d_multi_in (two channels)", lambda impl: jc.corr2d_multi_in(X2, K2, impl=impl)),
        (
            "6.4 corr2d_multi_in_out (K, K+1, K+2)",
            lambda impl: jc.corr2d_multi_in_out(X2, jnp.stack([K2, K2 + 1.0, K2 + 2.0]), impl=impl),
        ),
        ("6.5 pool2d(X, 2, 'max')", lambda impl: jc.pool2d(X, 2, impl=impl)),
        ("6.5 pool2d(X, 2, 'avg')", lambda impl: jc.pool2d(X, 2, "avg", impl=impl)),
        (
            "6.5 max_pool2d(4x4, 3, padding=1, stride=2)",
            lambda impl: jc.max_pool2d(X44, 3, padding=1, stride=2, impl=impl),
        ),
    ]


def main() -> int:
    """Prints each example through ``xla`` and ``manual`` and whether they agree."""
    np.set_printoptions(precision=4, suppress=True)
    agree = True
    for title, run in _examples():
        xla, manual = np.asarray(run("xla")), np.asarray(run("manual"))
        same = np.array_equal(xla, manual)
        agree &= same
        print(f"== {title}: xla {'==' if same else '!='} manual\n{manual}\n")
    shapes = [
        (dict(kernel_size=3, padding=1), "k3 p1"),
        (dict(kernel_size=3, padding=1, stride=2), "k3 p1 s2"),
        (dict(kernel_size=(3, 5), padding=(0, 1), stride=(3, 4)), "k(3,5) p(0,1) s(3,4)"),
    ]
    print("== 6.3 output shapes of an 8x8 input")
    for options, label in shapes:
        print(f"  {label:>22}: {jc.conv_output_shape(8, **options)}")
    return 0 if agree else 1
