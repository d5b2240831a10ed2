"""The convention translator: Flax/PyTorch hyper-parameters, kernels, SAME pads, and the book's
PyTorch LeNet checkpoint read without torch into jaxconv's LeNet."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxconv as jc
from jaxconv import convert
from jaxconv.nn import Conv2D, LeNet
from tests import reference


def test_kernels_round_trip_and_give_the_same_convolution():
    w = np.random.default_rng(0).normal(size=(4, 3, 5, 2)).astype(np.float32)
    np.testing.assert_array_equal(convert.hwio_to_oihw(convert.oihw_to_hwio(w)), w)
    x = jax.random.normal(jax.random.key(0), (1, 3, 8, 8))
    y = jc.conv2d(x, jnp.asarray(w), padding=1)
    y_nhwc = jc.conv2d(
        x.transpose(0, 2, 3, 1), jnp.asarray(convert.oihw_to_hwio(w)), padding=1, layout="NHWC"
    )
    reference.assert_close(y_nhwc.transpose(0, 3, 1, 2), y)
    with pytest.raises(ValueError, match="4 dimensions"):
        convert.oihw_to_hwio(w[0])


@pytest.mark.parametrize(
    ("size", "k", "stride", "dilation"), [(28, 5, 1, 1), (8, 3, 2, 1), (7, 4, 1, 1), (9, 3, 2, 2)]
)
def test_same_padding_as_explicit_pads_gives_the_same_output(size, k, stride, dilation):
    pads = convert.explicit_padding("SAME", size, k, stride=stride, dilation=dilation)
    x = jax.random.normal(jax.random.key(0), (1, 2, size, size))
    w = jax.random.normal(jax.random.key(1), (3, 2, k, k))
    y = jc.conv2d(x, w, padding="same", stride=stride, dilation=dilation)
    np.testing.assert_array_equal(jc.conv2d(x, w, padding=pads, stride=stride, dilation=dilation), y)
    assert y.shape[2] == -(-size // stride)


def test_padding_for_torch_and_back(tmp_path):
    assert convert.padding_for_torch(((2, 2), (1, 1))) == (2, 1)
    with pytest.raises(ValueError, match=r"asymmetric; .* F.pad\(x, \(0, 1, 0, 1\)\)"):
        convert.padding_for_torch(convert.explicit_padding("same", 8, 3, stride=2))


def test_flax_defaults_warn_and_translate():
    with pytest.warns(convert.ConventionWarning, match="Flax pads 'SAME' by default"):
        kwargs = convert.from_flax_conv(8, (3, 3))
    assert kwargs["padding"] == "same" and kwargs["layout"] == "NHWC"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        explicit = convert.from_flax_conv(
            8, (3, 3), strides=2, padding=((1, 0), (0, 1)), feature_group_count=2
        )
        circular = convert.from_flax_conv(4, (3, 3), padding="CIRCULAR")
    assert explicit["padding"] == ((1, 0), (0, 1)) and explicit["groups"] == 2
    assert circular["padding_mode"] == "circular"
    with pytest.warns(convert.ConventionWarning, match="stride 1 by default"):
        assert convert.from_flax_pool((2, 2))["stride"] == (1, 1)
    # A translated Flax layer computes what flax.linen.Conv computes (same HWIO kernel).
    import flax.linen as fnn

    x = jax.random.normal(jax.random.key(0), (2, 9, 9, 4))
    flax_conv = fnn.Conv(6, (3, 3), strides=2, padding="SAME", feature_group_count=2)
    variables = flax_conv.init(jax.random.key(1), x)
    ours = Conv2D(**convert.from_flax_conv(6, (3, 3), strides=2, padding="SAME", feature_group_count=2))
    reference.assert_close(ours.apply(variables, x), flax_conv.apply(variables, x))


def test_torch_conv_arguments():
    kwargs = convert.from_torch_conv2d(1, 6, kernel_size=5, padding=2, padding_mode="reflect")
    assert kwargs == dict(features=6, kernel_size=5, stride=1, padding=2, dilation=1, groups=1, use_bias=True,
                          padding_mode="reflect", layout="NCHW")  # fmt: skip
    with pytest.raises(ValueError, match="refuses padding='same' with stride > 1"):
        convert.from_torch_conv2d(1, 6, 3, stride=2, padding="same")


def test_the_books_torch_lenet_checkpoint_loads_and_gives_the_same_logits(tmp_path):
    torch = pytest.importorskip("torch", reason="optional peer: pip install torch==2.13.0")
    from torch import nn

    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.Sigmoid(), nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Conv2d(6, 16, kernel_size=5), nn.Sigmoid(), nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Flatten(), nn.Linear(16 * 5 * 5, 120), nn.Sigmoid(), nn.Linear(120, 84), nn.Sigmoid(), nn.Linear(84, 10),
    )  # fmt: skip
    torch.save(net.state_dict(), tmp_path / "lenet.pt")
    x = np.random.default_rng(0).uniform(size=(4, 1, 28, 28)).astype(np.float32)
    expected = net(torch.tensor(x)).detach().numpy()
    for layout in ("NCHW", "NHWC"):
        params = convert.lenet_params_from_torch(tmp_path / "lenet.pt", layout=layout)
        xl = x if layout == "NCHW" else x.transpose(0, 2, 3, 1)
        reference.assert_close(LeNet(layout=layout).apply({"params": params}, jnp.asarray(xl)), expected)


def test_the_reader_refuses_what_is_not_a_state_dict(tmp_path):
    (tmp_path / "x.pt").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a torch.save zip file"):
        convert.read_torch_state_dict(tmp_path / "x.pt")
    with pytest.raises(ValueError, match="expected the book's LeNet keys"):
        convert.lenet_params_from_torch({"0.weight": np.zeros((6, 1, 5, 5))})
