"""conv_transpose2d: PyTorch's semantics, the adjoint of conv2d, every impl, both layouts, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import jaxconv as jc
from jaxconv.nn import ConvTranspose2D
from tests import reference
from tests.draws import examples


@st.composite
def transpose_cases(draw):
    groups = draw(st.integers(1, 2))
    k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    output_padding = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation, strict=True))
    h, w = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    # padding may exceed dilation * (k - 1) (the output is then cropped), as long as it stays >= 1
    padding = tuple(
        draw(st.integers(0, max(0, ((n - 1) * s + d * (kk - 1) + op) // 2)))
        for n, s, d, kk, op in zip((h, w), stride, dilation, k, output_padding, strict=True)
    )
    return dict(
        n=draw(st.integers(1, 2)), c=groups * draw(st.integers(1, 2)), o=groups * draw(st.integers(1, 2)),
        h=h, w=w, k=k, groups=groups, stride=stride, dilation=dilation, padding=padding,
        output_padding=output_padding, bias=draw(st.booleans()), layout=draw(st.sampled_from(["NCHW", "NHWC"])),
        seed=draw(st.integers(0, 2**16)),
    )  # fmt: skip


def _arrays(case):
    rng = np.random.default_rng(case["seed"])
    x = rng.normal(size=(case["n"], case["c"], case["h"], case["w"])).astype(np.float32)
    w = rng.normal(size=(case["c"], case["o"] // case["groups"], *case["k"])).astype(np.float32)
    b = rng.normal(size=(case["o"],)).astype(np.float32) if case["bias"] else None
    return x, w, b


def _options(case):
    return {k: case[k] for k in ("stride", "padding", "output_padding", "dilation", "groups")}


@examples(10)  # x every impl per draw
@given(transpose_cases())
def test_every_impl_matches_the_float64_scatter_reference(case):
    x, w, b = _arrays(case)
    expected = reference.conv_transpose2d(x, w, b, **_options(case))
    xl, wl = (x.transpose(0, 2, 3, 1), w.transpose(2, 3, 1, 0)) if case["layout"] == "NHWC" else (x, w)
    for impl in jc.IMPL_CHOICES:
        y = jc.conv_transpose2d(jnp.asarray(xl), jnp.asarray(wl), None if b is None else jnp.asarray(b),
                                layout=case["layout"], impl=impl, **_options(case))  # fmt: skip
        y = np.asarray(y)
        reference.assert_close(y.transpose(0, 3, 1, 2) if case["layout"] == "NHWC" else y, expected)


@pytest.mark.parametrize(
    ("stride", "padding", "dilation", "groups"),
    [(1, 0, 1, 1), (2, 1, 1, 2), (3, 2, 2, 1), ((2, 1), (0, 1), 1, 1)],
)
def test_it_is_the_adjoint_and_the_input_gradient_of_conv2d(impl, stride, padding, dilation, groups):
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(2, 4, 9, 8)).astype(np.float32))
    w = jnp.asarray(rng.normal(size=(6, 4 // groups, 3, 3)).astype(np.float32))
    conv = lambda x: jc.conv2d(x, w, stride=stride, padding=padding, dilation=dilation, groups=groups)  # noqa: E731
    y, pullback = jax.vjp(conv, x)
    g = jnp.asarray(rng.normal(size=y.shape).astype(np.float32))
    # the output_padding that maps y's size back to x's
    s, p, d = (reference._pair(v) for v in (stride, padding, dilation))
    op = tuple(n - jc.conv_transpose_output_shape(m, 3, stride=si, padding=pi, dilation=di)[0]
               for n, m, si, pi, di in zip(x.shape[2:], y.shape[2:], s, p, d, strict=True))  # fmt: skip
    # conv2d's weight (O, C/g, kh, kw) is, read as a transposed-conv weight, (C_in=O, C_out/g, kh, kw)
    xt = jc.conv_transpose2d(g, w, stride=stride, padding=padding, output_padding=op, dilation=dilation,
                             groups=groups, impl=impl)  # fmt: skip
    assert xt.shape == x.shape
    reference.assert_close(xt, pullback(g)[0])
    np.testing.assert_allclose(float(jnp.vdot(y, g)), float(jnp.vdot(x, xt)), rtol=1e-4)


def test_matches_torch_when_installed():
    torch = pytest.importorskip("torch", reason="optional peer: pip install torch==2.13.0")
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 4, 5, 6)).astype(np.float32)
    w = rng.normal(size=(4, 3, 3, 2)).astype(np.float32)
    b = rng.normal(size=(6,)).astype(np.float32)
    options = dict(stride=(2, 3), padding=(1, 0), output_padding=(1, 2), dilation=(1, 2), groups=2)
    expected = torch.nn.functional.conv_transpose2d(*map(torch.tensor, (x, w, b)), **options).numpy()
    for impl in jc.IMPLS:
        reference.assert_close(
            jc.conv_transpose2d(*map(jnp.asarray, (x, w, b)), impl=impl, **options), expected
        )


def test_the_books_example_and_the_layer():
    x = jnp.array([[0.0, 1.0], [2.0, 3.0]])[None, None]
    np.testing.assert_array_equal(
        jc.conv_transpose2d(x, x, stride=2)[0, 0],
        [[0, 0, 0, 1], [0, 0, 2, 3], [0, 2, 0, 3], [4, 6, 6, 9]],  # d2l 13.10.1, stride 2
    )
    layer = ConvTranspose2D(6, 3, stride=2, padding=1, output_padding=1, groups=2, impl="xla")
    v = layer.init(jax.random.key(0), jnp.ones((2, 4, 5, 5)))
    assert v["params"]["kernel"].shape == (4, 3, 3, 3)
    y = layer.apply(v, jnp.ones((2, 4, 5, 5)))
    assert y.shape == (2, 6, 10, 10)
    reference.assert_close(layer.copy(impl="manual").apply(v, jnp.ones((2, 4, 5, 5))), y)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        (
            dict(output_padding=2, stride=2),
            ValueError,
            r"output_padding must be smaller than stride or dilation",
        ),
        (dict(padding=5), ValueError, r"output size along H would be .* < 1"),
        (dict(w=jnp.ones((3, 2, 3, 3))), ValueError, r"weight is for 3 input channels but x has 4"),
        (dict(groups=3), ValueError, r"input channels 4 must be divisible by groups=3"),
        (dict(b=jnp.ones(5)), ValueError, r"bias must have shape \(2,\)"),
        (dict(padding=-1), ValueError, r"padding must be >= 0"),
        (dict(w=jnp.ones((4, 2, 3, 3), jnp.float16)), TypeError, r"share one dtype"),
        (dict(precision="tf32"), ValueError, r"precision must be None, 'default'"),
    ],
)
def test_bad_arguments_are_refused(kwargs, exc, match):
    args = dict(x=jnp.ones((1, 4, 4, 4)), w=jnp.ones((4, 2, 3, 3)), b=None) | kwargs
    x, w, b = args.pop("x"), args.pop("w"), args.pop("b")
    with pytest.raises(exc, match=match):
        jc.conv_transpose2d(x, w, b, **args)
