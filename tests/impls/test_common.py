"""The helpers the hand-written cores share (jaxconv.impls.common), checked by construction."""

import jax.numpy as jnp
import numpy as np

from jaxconv.impls import common


def test_overlapping_tiles_overlap_and_zero_fill():
    x = jnp.arange(10.0).reshape(1, 1, 10, 1)
    got = common.overlapping_tiles(x, tiles=3, step=4, span=6, axis=2)[0, 0, :, :, 0]
    np.testing.assert_array_equal(got, [[0, 1, 2, 3, 4, 5], [4, 5, 6, 7, 8, 9], [8, 9, 0, 0, 0, 0]])
    # the same tiles along rows (winograd tiles both axes)
    rows = common.overlapping_tiles(x.reshape(1, 10, 1, 1), tiles=3, step=4, span=6, axis=1)
    np.testing.assert_array_equal(rows[0, :, :, 0, 0], got)
    # stride wider than the kernel: tiles with gaps between them
    np.testing.assert_array_equal(
        common.overlapping_tiles(x, tiles=2, step=5, span=3, axis=2)[0, 0, :, :, 0], [[0, 1, 2], [5, 6, 7]]
    )
    # overlap longer than a step: heads of two next blocks
    np.testing.assert_array_equal(common.overlapping_tiles(x, tiles=2, step=2, span=7, axis=2)[0, 0, :, :, 0],
                                  [[0, 1, 2, 3, 4, 5, 6], [2, 3, 4, 5, 6, 7, 8]])  # fmt: skip
