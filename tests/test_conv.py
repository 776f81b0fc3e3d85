"""Conv2D, MaxPool2D and Flatten against plain-loop references and central differences."""

import numpy as np
import pytest

from scribblenet import conv
from scribblenet.activations import ReLU
from scribblenet.conv import Conv2D, Flatten, MaxPool2D
from scribblenet.layers import Dense
from scribblenet.losses import SoftmaxCrossEntropy
from scribblenet.matmul import NumpyBackend
from test_gradients import numeric_grad


def reference_conv(X, W, b, kernel, padding):
    """The convolution written out plainly: one dot product per output pixel and channel."""
    n, c_in, k = len(X), X.shape[3], kernel
    W4 = W.reshape(k, k, c_in, -1)  # (k, k, c_in, c_out)
    if padding == "same":
        top, bottom = (k - 1) // 2, k // 2
        X = np.pad(X, ((0, 0), (top, bottom), (top, bottom), (0, 0)))
    oh, ow = X.shape[1] - k + 1, X.shape[2] - k + 1
    Z = np.zeros((n, oh, ow, W.shape[1]))
    for e in range(n):
        for y in range(oh):
            for x in range(ow):
                for o in range(W.shape[1]):
                    Z[e, y, x, o] = np.sum(X[e, y : y + k, x : x + k, :] * W4[..., o]) + b[o]
    return Z


def make_conv(c_in, c_out, k, padding, seed=0, dtype="float64", **kwargs):
    """A Conv2D with random W and b."""
    rng = np.random.default_rng(seed)
    layer = Conv2D(c_in, c_out, k, padding, rng, dtype=dtype, **kwargs)
    layer.b[:] = rng.standard_normal(c_out)
    return layer


class CountingBackend(NumpyBackend):
    """NumPy products that count how often each entry point is called."""

    def __init__(self):
        self.calls = {"mm": 0, "mm_tn": 0, "mm_nt": 0}

    def mm(self, A, B, out=None, bias=None):
        self.calls["mm"] += 1
        return super().mm(A, B, out, bias)

    def mm_tn(self, A, B, out=None):
        self.calls["mm_tn"] += 1
        return super().mm_tn(A, B, out)

    def mm_nt(self, A, B, out=None):
        self.calls["mm_nt"] += 1
        return super().mm_nt(A, B, out)


@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("k", [1, 3, 5])
@pytest.mark.parametrize("c_in", [1, 3, 8])
def test_conv_shapes(padding, k, c_in):
    layer = make_conv(c_in, 4, k, padding)
    X = np.random.default_rng(1).standard_normal((2, 7, 6, c_in))
    Z = layer.forward(X)
    expected = (7, 6, 4) if padding == "same" else (7 - k + 1, 6 - k + 1, 4)
    assert Z.shape == (2, *expected)
    assert layer.output_shape((7, 6, c_in)) == expected
    assert layer.W.shape == (k * k * c_in, 4)
    assert layer.backward(np.ones_like(Z)).shape == X.shape


@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("k", [1, 2, 3, 4])
@pytest.mark.parametrize("c_in", [1, 3])  # im2col takes a different path for one channel
def test_conv_forward_matches_reference(padding, k, c_in):
    layer = make_conv(c_in, 5, k, padding, seed=k)
    X = np.random.default_rng(2).standard_normal((3, 6, 7, c_in))
    expected = reference_conv(X, layer.W, layer.b, k, padding)
    np.testing.assert_allclose(layer.forward(X), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.forward(X, train=False), expected, rtol=1e-12, atol=1e-12)


def test_conv_eval_in_chunks_matches_one_pass(monkeypatch):
    layer = make_conv(2, 3, 3, "same")
    X = np.random.default_rng(3).standard_normal((7, 5, 5, 2))
    expected = layer.forward(X).copy()
    monkeypatch.setattr(conv, "_EVAL_CHUNK", 3)  # 3 + 3 + 1 examples
    np.testing.assert_allclose(layer.forward(X, train=False), expected, rtol=1e-12)


@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("c_in", [1, 2])
def test_conv_gradients(padding, c_in):
    rng = np.random.default_rng(4)
    layer = make_conv(c_in, 3, 3, padding, seed=5)
    X = rng.standard_normal((2, 5, 4, c_in))
    R = rng.standard_normal(layer.forward(X).shape)  # random projection to a scalar

    def f():
        return float((layer.forward(X) * R).sum())

    dW, db, dX = numeric_grad(f, layer.W), numeric_grad(f, layer.b), numeric_grad(f, X)
    layer.forward(X)
    got_dX = layer.backward(R.copy())
    np.testing.assert_allclose(layer.dW, dW, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(layer.db, db, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(got_dX, dX, rtol=1e-6, atol=1e-9)
    assert layer.backward(R, need_dX=False) is None


def test_conv_buffers_are_reused_and_shrink_to_smaller_batches():
    layer = make_conv(2, 3, 3, "same")
    X = np.random.default_rng(6).standard_normal((4, 5, 5, 2))
    Z1 = layer.forward(X)
    assert np.shares_memory(layer.forward(X), Z1)
    # A smaller last batch reuses the first rows of each buffer and stays correct.
    fresh = make_conv(2, 3, 3, "same")
    np.testing.assert_allclose(layer.forward(X[:2]), fresh.forward(X[:2]), rtol=1e-12)
    dZ = np.random.default_rng(7).standard_normal((2, 5, 5, 3))
    np.testing.assert_allclose(layer.backward(dZ), fresh.backward(dZ), rtol=1e-12)
    np.testing.assert_allclose(layer.dW, fresh.dW, rtol=1e-12)


@pytest.mark.parametrize("shape", [(2, 4, 6, 3), (2, 5, 7, 2)])
@pytest.mark.parametrize("size", [2, 3])
def test_maxpool_forward_and_gradient(shape, size):
    rng = np.random.default_rng(8)
    X = rng.standard_normal(shape)  # continuous values: no ties
    pool = MaxPool2D(size)
    n, h, w, c = shape
    Y = pool.forward(X)
    assert Y.shape == (n, h // size, w // size, c)
    for i, j in np.ndindex(h // size, w // size):
        window = X[:, i * size : (i + 1) * size, j * size : (j + 1) * size]
        np.testing.assert_array_equal(Y[:, i, j], window.max(axis=(1, 2)))
    np.testing.assert_array_equal(pool.forward(X, train=False), Y)
    R = rng.standard_normal(Y.shape)

    def f():
        return float((pool.forward(X) * R).sum())

    expected = numeric_grad(f, X)
    pool.forward(X)
    dX = pool.backward(R)
    np.testing.assert_allclose(dX, expected, rtol=1e-6, atol=1e-9)
    assert not dX[:, (h // size) * size :].any()  # the dropped remainder gets no gradient
    assert not dX[:, :, (w // size) * size :].any()


def test_maxpool_tie_sends_the_gradient_to_the_first_maximum_only():
    X = np.array([[1.0, 3.0], [3.0, 3.0]]).reshape(1, 2, 2, 1)
    pool = MaxPool2D(2)
    assert pool.forward(X).item() == 3.0
    dX = pool.backward(np.full((1, 1, 1, 1), 5.0))
    np.testing.assert_array_equal(dX.reshape(2, 2), [[0.0, 5.0], [0.0, 0.0]])


def test_flatten_round_trip_and_gradient():
    rng = np.random.default_rng(9)
    X = rng.standard_normal((3, 2, 4, 5))
    flat = Flatten()
    Y = flat.forward(X)
    assert Y.shape == (3, 40)
    assert flat.output_shape((2, 4, 5)) == (40,)
    np.testing.assert_array_equal(Y[1], X[1].ravel())
    R = rng.standard_normal(Y.shape)
    expected = numeric_grad(lambda: float((flat.forward(X) * R).sum()), X)
    flat.forward(X)
    np.testing.assert_allclose(flat.backward(R), expected, rtol=1e-6, atol=1e-9)


def test_small_convnet_gradients_end_to_end():
    rng = np.random.default_rng(10)
    conv_layer = make_conv(1, 2, 3, "same", seed=11)
    relu, pool, flat = ReLU(), MaxPool2D(2), Flatten()
    dense = Dense(2 * 2 * 2, 3, rng, "glorot", "float64")
    dense.b[:] = rng.standard_normal(3) * 0.1
    loss = SoftmaxCrossEntropy()
    X = rng.standard_normal((3, 5, 4, 1))
    y = np.array([0, 2, 1])

    def cost():
        Z = conv_layer.forward(X)  # (3, 5, 4, 2)
        A = flat.forward(pool.forward(relu.forward(Z)))  # (3, 8)
        return loss.forward(dense.forward(A), y)

    def backprop():
        cost()
        dA = dense.backward(loss.backward())  # (3, 8)
        dZ = relu.backward(pool.backward(flat.backward(dA)))  # (3, 5, 4, 2)
        return conv_layer.backward(dZ)

    dX = backprop().copy()
    params = [conv_layer.W, conv_layer.b, dense.W, dense.b]
    grads = [g.copy() for g in (conv_layer.dW, conv_layer.db, dense.dW, dense.db)]
    for p, g in zip([*params, X], [*grads, dX], strict=True):
        np.testing.assert_allclose(g, numeric_grad(cost, p), rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_preserved(dtype):
    X = np.random.default_rng(12).standard_normal((2, 6, 6, 1)).astype(dtype)
    layer = Conv2D(1, 3, 3, "same", np.random.default_rng(0), dtype=dtype)
    assert layer.W.dtype == layer.b.dtype == dtype
    pool, flat = MaxPool2D(), Flatten()
    for train in (True, False):
        Z = layer.forward(X, train)
        Y = pool.forward(Z, train)
        assert Z.dtype == Y.dtype == flat.forward(Y, train).dtype == dtype
    dY = flat.backward(np.ones((2, 27), dtype))
    dZ = pool.backward(dY)
    assert dY.dtype == dZ.dtype == layer.backward(dZ).dtype == layer.dW.dtype == dtype


def test_products_go_through_the_backend(monkeypatch):
    backend = CountingBackend()
    layer = make_conv(2, 3, 3, "valid", backend=backend)
    X = np.random.default_rng(13).standard_normal((5, 6, 6, 2))
    Z = layer.forward(X)
    assert backend.calls == {"mm": 1, "mm_tn": 0, "mm_nt": 0}
    layer.backward(np.ones_like(Z))
    assert backend.calls == {"mm": 1, "mm_tn": 1, "mm_nt": 1}
    layer.backward(np.ones_like(Z), need_dX=False)
    assert backend.calls == {"mm": 1, "mm_tn": 2, "mm_nt": 1}
    monkeypatch.setattr(conv, "_EVAL_CHUNK", 2)
    layer.forward(X, train=False)  # chunks of 2 + 2 + 1 examples
    assert backend.calls == {"mm": 4, "mm_tn": 2, "mm_nt": 1}


def test_rng_none_leaves_weights_at_zero():
    layer = Conv2D(3, 4, 5)
    assert layer.W.shape == (75, 4)
    assert not layer.W.any()
    assert not layer.b.any()
    assert repr(layer) == "Conv2D(3, 4, kernel=5, padding='valid', dtype=float32)"


def test_he_init_scales_by_the_patch_size():
    layer = Conv2D(8, 64, 5, rng=np.random.default_rng(14), dtype="float64")
    assert layer.W.std() == pytest.approx(np.sqrt(2 / (5 * 5 * 8)), rel=0.05)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"padding": "full"}, "padding must be one of valid, same"),
        ({"kernel": 0}, "kernel must be an integer >= 1"),
        ({"in_channels": 2.0}, "in_channels must be an integer >= 1"),
        ({"dtype": "float16"}, "dtype must be float32 or float64"),
    ],
)
def test_conv_rejects_bad_arguments(kwargs, message):
    args = {"in_channels": 1, "out_channels": 2, "kernel": 3} | kwargs
    with pytest.raises(ValueError, match=message):
        Conv2D(**args)


def test_bad_inputs_say_what_is_expected():
    layer = Conv2D(1, 2, 5)
    with pytest.raises(ValueError, match="expected 1 input channels, got 3"):
        layer.forward(np.zeros((1, 8, 8, 3)))
    with pytest.raises(ValueError, match="smaller than the 5×5 kernel"):
        layer.forward(np.zeros((1, 4, 8, 1)))
    with pytest.raises(ValueError, match=r"input must have shape \(n, h, w, 1\)"):
        layer.forward(np.zeros((1, 64)))
    with pytest.raises(ValueError, match="pool size must be an integer >= 1"):
        MaxPool2D(0)
    assert repr(MaxPool2D(3)) == "MaxPool2D(size=3)"
    assert repr(Flatten()) == "Flatten()"
