"""The pooling race: every contestant runs, agrees with XLA's gradient, and is reported."""

import pytest

from jaxconv.bench import pool_race, torch_peer

TINY = (
    pool_race.PoolLayer("tiny max", "max", (2, 3, 9, 8), 3, 2, 1),
    pool_race.PoolLayer("tiny avg", "avg", (2, 3, 8, 8), 2, 2),
)


@pytest.mark.parametrize("with_torch", [False, True])
def test_a_tiny_pool_race_times_every_contestant(with_torch):
    if with_torch and not torch_peer.available():
        pytest.skip("PyTorch is not installed")
    result = pool_race.run(TINY, rounds=2, repeats=1, with_torch=with_torch)
    assert [r["layer"]["name"] for r in result["layers"]] == ["tiny max", "tiny avg"]
    for layer in result["layers"]:
        expected = {f"{i} {lay}" for i in pool_race.IMPLS for lay in pool_race.LAYOUTS}
        expected |= {"torch NCHW", "torch channels_last"} if with_torch else set()
        assert set(layer["ms"]) == expected and all(len(s) == 2 for s in layer["seconds"].values())
        assert layer["best_jaxconv"].split()[0] in ("shift_add", "im2col")
        assert set(layer["auto"]) == {"NHWC", "NCHW"}
        assert ("torch NCHW" in layer["best_jaxconv_vs"]) == with_torch
    assert "tiny max: max 3x3 s2 p1" in pool_race.format_layer(result["layers"][0])


def test_a_contestant_with_a_wrong_gradient_stops_the_race(monkeypatch):
    real = pool_race._jax_contestant

    def wrong_for_im2col(layer, impl, layout):
        call, dx = real(layer, impl, layout)
        return call, dx * (2.0 if impl == "im2col" else 1.0)

    monkeypatch.setattr(pool_race, "_jax_contestant", wrong_for_im2col)
    with pytest.raises(AssertionError, match="im2col NHWC"):
        pool_race.run(TINY[:1], rounds=1, repeats=1, with_torch=False)
