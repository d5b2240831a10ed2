"""6.2 Convolutions for images: corr2d, edge detection, learning a kernel, correlation vs convolution."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxconv as jc
from jaxconv.experiments.common import image_row, save
from jaxconv.nn import Conv2D

EDGE = jnp.array([[1.0, -1.0]])


def book_edge_image() -> jax.Array:
    """The book's 6x8 image: white (1) with a black (0) band in columns 2..5."""
    return jnp.ones((6, 8)).at[:, 2:6].set(0.0)


def photograph() -> tuple[np.ndarray, str]:
    """scikit-image's camera man, scaled to [0, 1]; a synthetic disc if scikit-image is missing."""
    try:
        from skimage import data

        return data.camera().astype(np.float32) / 255.0, "skimage.data.camera()"
    except ImportError:
        yy, xx = np.mgrid[:128, :128]
        return ((yy - 64) ** 2 + (xx - 64) ** 2 < 40**2).astype(
            np.float32
        ), "synthetic disc (no scikit-image)"


def learn_kernel(X: jax.Array, Y: jax.Array, impl: str, flip: bool, steps: int = 10, lr: float = 3e-2):
    """The book's loop: a 1x2 ``Conv2D`` without bias, squared error, plain gradient descent (optax SGD).

    ``flip=True`` flips the layer's kernel before use, i.e. trains a strict convolution. Returns the
    learned (stored) kernel and the loss every 2 steps.
    """
    layer = Conv2D(1, (1, 2), use_bias=False, impl=impl)
    x, y = X[None, None], Y[None, None]
    params = layer.init(jax.random.key(0), x)

    def predict(params):
        if flip:
            params = jax.tree.map(lambda k: k[..., ::-1, ::-1], params)
        return cast(jax.Array, layer.apply(params, x))

    tx = optax.sgd(lr)
    opt_state = tx.init(params)

    @jax.jit
    def step(params, opt_state):
        loss, grad = jax.value_and_grad(lambda p: jnp.sum((predict(p) - y) ** 2))(params)
        updates, opt_state = tx.update(grad, opt_state)
        return optax.apply_updates(params, updates), opt_state, loss

    losses = []
    for i in range(steps):
        params, opt_state, loss = step(params, opt_state)
        if (i + 1) % 2 == 0:
            losses.append(float(loss))
    kernel = params["params"]["kernel"][0, 0]
    return np.asarray(kernel), losses  # with flip, the stored kernel: what the convolution learned


def run(out: Path, fast: bool = False) -> dict:
    X = jnp.arange(9.0).reshape(3, 3)
    K = jnp.arange(4.0).reshape(2, 2)
    numbers: dict = {}
    for impl in jc.IMPLS:
        numbers[f"corr2d_{impl}"] = np.asarray(jc.corr2d(X, K, impl=impl)).tolist()
    print("corr2d(X, K) =", numbers["corr2d_xla"], "(book: [[19, 25], [37, 43]])")

    img = book_edge_image()
    Y = jc.corr2d(img, EDGE)
    numbers["edges"] = np.asarray(Y).tolist()
    numbers["edges_on_transpose_max_abs"] = float(jnp.abs(jc.corr2d(img.T, EDGE)).max())
    print("vertical edges of the book's image (1: white to black, -1: black to white):")
    print(np.asarray(Y))
    print(
        f"the same kernel on the transposed image sees no edge: max |Y| = {numbers['edges_on_transpose_max_abs']}"
    )

    for impl in jc.IMPLS:
        learned, losses = learn_kernel(img, Y, impl, flip=False)
        numbers[f"learned_kernel_{impl}"] = learned.tolist()
        numbers[f"learning_losses_{impl}"] = losses
        print(
            f"{impl}: " + ", ".join(f"step {2 * (i + 1)}, loss {loss:.3f}" for i, loss in enumerate(losses))
        )
        print(f"{impl}: learned kernel {np.array2string(learned, precision=4)} (true [[1, -1]])")
    flipped, _ = learn_kernel(img, Y, "xla", flip=True)
    numbers["learned_convolution_kernel"] = flipped.tolist()
    print(
        f"a strict-convolution layer learns the flipped kernel: {np.array2string(flipped, precision=4)} (flip: [[-1, 1]])"
    )
    numbers["learned_kernel_error"] = float(np.abs(np.asarray(numbers["learned_kernel_xla"]) - EDGE).max())

    photo, source = photograph()
    if fast:
        photo = photo[::4, ::4]
    photo = jnp.asarray(photo)
    panels = [
        (photo, f"{source}", "gray"),
        (jc.corr2d(photo, EDGE), "K = [[1, -1]]: vertical edges", "RdBu"),
        (jc.corr2d(photo, EDGE.T), "K = [[1], [-1]]: horizontal edges", "RdBu"),
    ]
    fig = image_row(panels, figsize=(11, 4))
    return save(out, "conv_layer", numbers, fig)
