"""The WebAssembly GEMM kernel (web/gemm) and its NumPy-facing backend.

The kernel itself runs in Node (tests/gemm_node_check.mjs, `native` tests) and is compared here
with NumPy. The backend's routing is checked against a ctypes stand-in for the kernel; those
tests also run inside Pyodide, where a runner that called installGemm gets the real kernel
checked too.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from scribblenet.matmul import NumpyBackend
from scribblenet.optimizers import Adam
from scribblenet.wasm_matmul import JS_MODULE, WasmBackend, load_wasm_backend, self_test

NODE = shutil.which("node")
needs_node = pytest.mark.skipif(NODE is None, reason="node is not installed")
KERNEL_INSTALLED = importlib.util.find_spec(JS_MODULE) is not None  # Pyodide after installGemm


def run_node(repo_root: Path, *args: str, flags: tuple[str, ...] = ()) -> str:
    """Run tests/gemm_node_check.mjs and return its stdout (fails the test on a non-zero exit)."""
    script = repo_root / "tests" / "gemm_node_check.mjs"
    proc = subprocess.run(
        [NODE, *flags, str(script), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=repo_root,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def result_line(stdout: str) -> dict:
    """The JSON after "RESULT " in a node check's output."""
    lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, stdout[-3000:]
    return json.loads(lines[-1][len("RESULT ") :])


def relaxed_flags() -> tuple[str, ...] | None:
    """Node flags that enable relaxed SIMD, or None when this Node cannot run it at all."""
    for flags in ((), ("--experimental-wasm-relaxed-simd",)):
        probe = "console.log(WebAssembly.validate(new Uint8Array([0,97,115,109,1,0,0,0,1,5,1,96,0,1,123,3,2,1,0,10,28,1,26,0,67,0,0,0,0,253,19,67,0,0,0,0,253,19,67,0,0,0,0,253,19,253,133,2,11])))"  # noqa: E501
        proc = subprocess.run(
            [NODE, *flags, "-e", probe], capture_output=True, text=True, check=False
        )
        if proc.returncode == 0 and proc.stdout.strip() == "true":
            return flags
    return None


# ---- the kernel in Node, against NumPy --------------------------------------------------


@pytest.mark.native
@needs_node
@pytest.mark.parametrize("wasm", ["gemm.wasm", "gemm_relaxed.wasm"])
def test_kernel_matches_numpy(repo_root, tmp_path, wasm):
    flags: tuple[str, ...] = ()
    if wasm == "gemm_relaxed.wasm":
        flags = relaxed_flags()
        if flags is None:
            pytest.skip("this Node cannot run relaxed SIMD")
    run_node(repo_root, "kernel", str(repo_root / "web" / "gemm" / wasm), str(tmp_path), "99",
             flags=flags)  # fmt: skip
    report = json.loads((tmp_path / "cases.json").read_text())
    data = np.fromfile(tmp_path / "data.bin", dtype="<f4")
    assert report["errors"] == []
    assert report["features"] == (3 if "relaxed" in wasm else 1)

    def block(at: int, shape) -> np.ndarray:
        return data[at : at + shape[0] * shape[1]].reshape(shape).astype(np.float64)

    layouts_seen = set()
    for case in report["cases"]:
        M, N, K = case["M"], case["N"], case["K"]
        A, B = block(case["a"], case["a_shape"]), block(case["b"], case["b_shape"])
        C0 = block(case["c0"], (M, case["ldc"]))[:, :N]  # (M, N)
        C = block(case["c"], (M, case["ldc"]))[:, :N]  # (M, N)
        A = A[:K, :M].T if case["layout"] == "tn" else A[:M, :K]  # (M, K)
        B = B[:N, :K].T if case["layout"] == "nt" else B[:K, :N]  # (K, N)
        expected = A @ B + case["beta"] * C0  # (M, N)
        scale = np.abs(A) @ np.abs(B) + abs(case["beta"]) * np.abs(C0)
        if case["bias"]:
            bias = data[case["bias_at"] : case["bias_at"] + N].astype(np.float64)
            expected += bias
            scale += np.abs(bias)
        tol = (K + 3) * 2.0**-23 * scale + 1e-7
        label = f"{case['layout']} {M}x{N}x{K} {case['variant']}"
        assert np.all(np.isfinite(C)), label
        assert np.all(np.abs(C - expected) <= tol), label
        layouts_seen.add(case["layout"])
    assert layouts_seen == {"nn", "tn", "nt"}


def adam_reference(p, g, m, v, alpha, beta1, beta2, eps_hat):
    """Copies of p, m, v after one step of the real optimiser's NumPy path (fused unset)."""
    opt = Adam(learning_rate=1.0, beta1=beta1, beta2=beta2)
    p, m, v = p.copy(), m.copy(), v.copy()
    opt.m[0], opt.v[0], opt._scratch[0] = m, v, np.empty_like(p)
    opt._alpha, opt._eps_hat = alpha, eps_hat
    opt._update(0, p, g)
    return p, m, v


@pytest.mark.native
@needs_node
@pytest.mark.parametrize("wasm", ["gemm.wasm", "gemm_relaxed.wasm"])
def test_kernel_adam_update_is_bit_identical_to_numpy(repo_root, tmp_path, wasm):
    flags: tuple[str, ...] = ()
    if wasm == "gemm_relaxed.wasm":
        flags = relaxed_flags()
        if flags is None:
            pytest.skip("this Node cannot run relaxed SIMD")
    run_node(repo_root, "adam", str(repo_root / "web" / "gemm" / wasm), str(tmp_path), "5",
             flags=flags)  # fmt: skip
    report = json.loads((tmp_path / "adam.json").read_text())
    data = np.fromfile(tmp_path / "adam.bin", dtype="<f4")
    assert report["errors"] == []
    sc = report["scalars"]
    sizes = []
    for case in report["cases"]:
        n = case["n"]
        p, g, m, v = (data[at : at + n].copy() for at in case["in"])
        want = adam_reference(p, g, m, v, sc["alpha"], sc["beta1"], sc["beta2"], sc["eps_hat"])
        for name, at, expected in zip("pmv", case["out"], want, strict=True):
            np.testing.assert_array_equal(data[at : at + n], expected, err_msg=f"{name} n={n}")
        sizes.append(n)
    assert 1 in sizes and any(n % 4 for n in sizes) and max(sizes) > 1000


@pytest.mark.native
@needs_node
def test_install_gemm_finds_the_heap_and_fails_softly(repo_root):
    result = result_line(run_node(repo_root, "install"))
    assert result["notCaptured"]["ok"] is False
    assert "captureWasmMemory" in result["notCaptured"]["reason"]
    assert result["wrapped"] is True  # captured memories still pass `instanceof`
    assert result["installed"]["ok"] is True, result["installed"]
    assert result["restored"] is True  # the constructor is put back after install
    assert result["moduleName"] == "scribblenet_gemm"
    assert result["product"] == [4, 5, 10, 11]  # written into the heap after it grew
    assert result["pythonFails"]["ok"] is False
    assert "python is broken" in result["pythonFails"]["reason"]
    assert result["missingWasm"]["ok"] is False
    assert result["restoredAfterFailure"] is True


def find_pyodide(repo_root: Path) -> tuple[Path, Path] | None:
    """(Pyodide runtime dir, numpy wheel): runtime from node_modules, wheel from dist/ or cache.

    The runtime must not be dist/pyodide: the repo's package.json says "type": "module", so Node
    would load dist/pyodide/pyodide.asm.js (CommonJS) as an ES module and fail.
    """
    runtime = repo_root / "node_modules" / "pyodide"
    candidates = [
        (runtime, repo_root / "dist" / "pyodide"),
        (runtime, repo_root / ".cache" / "pyodide-wheels"),
    ]
    for pyodide_dir, wheel_dir in candidates:
        wheels = sorted(wheel_dir.glob("numpy-*-pyodide_*_wasm32.whl"))
        if (pyodide_dir / "pyodide.mjs").is_file() and wheels:
            return pyodide_dir, wheels[-1]
    return None


@pytest.mark.native
@needs_node
@pytest.mark.parametrize("flavour", ["simd", "relaxed"])
def test_pyodide_integration(repo_root, flavour):
    found = find_pyodide(repo_root)
    if found is None:
        pytest.skip("no Pyodide + numpy wheel (npm ci; python scripts/fetch_wheels.py)")
    flags: tuple[str, ...] = ()
    if flavour == "relaxed":
        flags = relaxed_flags()
        if flags is None:
            pytest.skip("this Node cannot run relaxed SIMD")
    pyodide_dir, wheel = found
    out = run_node(repo_root, "pyodide", str(pyodide_dir), str(wheel), flavour, flags=flags)
    result = result_line(out)
    assert result["install"]["ok"] is True, result["install"]
    assert result["install"]["relaxed"] is (flavour == "relaxed")
    py = result["python"]
    assert py["ok"] is True, py["reason"]
    assert py["layer_err"] < 1e-3
    assert py["after_growth"]["ok"] is True
    assert py["after_growth"]["top_address"] > 400_000_000  # the heap really grew
    assert py["selftest_calls"] > 0  # the kernel, not the NumPy fallback, did the work
    adam = py["adam"]
    assert adam["calls"] > 0
    assert adam["max_ulps"] <= 1.0  # bit-identical expected (0), an ulp tolerated
    assert adam["fused_vs_numpy"] <= 1e-6
    assert adam["trainer_fused"] is True
    assert adam["trainer_calls"] > 0


@pytest.mark.native
def test_committed_wasm_is_built_from_gemm_c(repo_root):
    if shutil.which("clang") is None or shutil.which("wasm-ld") is None:
        pytest.skip("clang + lld not installed")
    proc = subprocess.run(
        ["bash", str(repo_root / "scripts" / "build_gemm.sh"), "--check"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if proc.returncode == 3:
        pytest.skip(proc.stderr.strip())
    assert proc.returncode == 0, proc.stderr


# ---- the backend's routing, with a ctypes stand-in for the kernel ------------------------


def _view(address: int, rows: int, cols: int, ld: int) -> np.ndarray:
    """The (rows, cols) float32 matrix at `address` with leading dimension `ld`."""
    import ctypes  # here, not at the top: collection must not need it under Pyodide

    n = (rows - 1) * ld + cols if rows else 0
    buffer = (ctypes.c_float * max(n, 1)).from_address(address)
    return np.ndarray((rows, cols), np.float32, buffer=buffer, strides=(4 * ld, 4))


class FakeKernel:
    """The kernel's four functions, with its exact calling convention, done by NumPy."""

    relaxed = False

    def __init__(self, bug: float = 0.0, adam_bug: float = 0.0):
        self.bug = bug
        self.adam_bug = adam_bug
        self.log: list[str] = []

    def adam_update(self, n, p, g, m, v, alpha, beta1, beta2, c1, c2, eps_hat):
        p, g, m, v = (_view(a, 1, n, n)[0] for a in (p, g, m, v))  # (n,) each
        f = np.float32
        assert f(c1) == f(1 - beta1) and f(c2) == f(1 - beta2)
        want = adam_reference(p, g, m, v, alpha, beta1, beta2, eps_hat)
        for got, new in zip((p, m, v), want, strict=True):
            got[...] = new
        p += self.adam_bug
        self.log.append("adam")

    def _run(self, name, M, N, K, A, lda, B, ldb, C, ldc, beta, bias):
        a = _view(A, K, M, lda).T if name == "tn" else _view(A, M, K, lda)  # (M, K)
        b = _view(B, N, K, ldb).T if name == "nt" else _view(B, K, N, ldb)  # (K, N)
        c = _view(C, M, N, ldc)  # (M, N)
        assert beta == 0.0
        c[...] = a @ b + self.bug
        if bias:
            c += _view(bias, 1, N, N)[0]  # (N,)
        self.log.append(name)

    def gemm_nn(self, *args):
        self._run("nn", *args)

    def gemm_tn(self, *args):
        self._run("tn", *args)

    def gemm_nt(self, *args):
        self._run("nt", *args)


def test_backend_routes_each_layout_to_its_kernel(rng):
    kernel = FakeKernel()
    backend = WasmBackend(kernel, min_work=0)
    X = rng.standard_normal((6, 5), dtype=np.float32)  # (n, in)
    W = rng.standard_normal((5, 3), dtype=np.float32)  # (in, out)
    dZ = rng.standard_normal((6, 3), dtype=np.float32)  # (n, out)
    np.testing.assert_allclose(backend.mm(X, W), X @ W, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(backend.mm_tn(X, dZ), X.T @ dZ, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(backend.mm_nt(dZ, W), dZ @ W.T, rtol=1e-5, atol=1e-6)
    # A transposed (Fortran-order) operand passed to mm is recognised as well.
    np.testing.assert_allclose(backend.mm(np.asfortranarray(X), W), X @ W, rtol=1e-5)
    assert kernel.log == ["nn", "tn", "nt", "tn"]


def test_backend_writes_into_out_and_handles_leading_dimensions(rng):
    kernel = FakeKernel()
    backend = WasmBackend(kernel, min_work=0)
    big = rng.standard_normal((8, 12), dtype=np.float32)
    A = big[1:5, 2:9]  # (4, 7) with lda = 12
    B = rng.standard_normal((7, 20), dtype=np.float32)[:, ::1][:, 3:8]  # (7, 5), ldb = 20
    out = np.full((4, 5), np.nan, dtype=np.float32)
    got = backend.mm(A, B, out=out)
    assert got is out
    np.testing.assert_allclose(out, A @ B, rtol=1e-5, atol=1e-6)
    assert kernel.log == ["nn"]


def test_backend_adds_the_bias_in_the_kernel_or_after_it(rng):
    kernel = FakeKernel()
    backend = WasmBackend(kernel, min_work=0)
    X = rng.standard_normal((6, 5), dtype=np.float32)  # (n, in)
    W = rng.standard_normal((5, 3), dtype=np.float32)  # (in, out)
    b = rng.standard_normal(3, dtype=np.float32)  # (out,)
    expected = X @ W + b  # (n, out)
    out = np.empty((6, 3), np.float32)
    for bias in (b, b.astype(np.float64), np.repeat(b, 2)[::2]):  # fused, then added after
        np.testing.assert_allclose(backend.mm(X, W, bias=bias), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(backend.mm(X, W, out=out, bias=b), expected, rtol=1e-5)
    assert kernel.log == ["nn"] * 4  # every product on the kernel (min_work 0)
    backend.min_work = 10**6
    np.testing.assert_array_equal(backend.mm(X, W, bias=b), np.matmul(X, W) + b)  # NumPy's
    # What the NumPy backend gives, to the bit: the product, then the bias added.
    np.testing.assert_array_equal(NumpyBackend().mm(X, W, bias=b), np.matmul(X, W) + b)


@pytest.mark.parametrize(
    "case",
    ["float64", "tiny", "strided", "overlap", "both_transposed", "out_fortran", "mismatch"],
)
def test_backend_falls_back_to_numpy(rng, case):
    kernel = FakeKernel(bug=1000.0)  # any kernel call would show up in the result
    backend = WasmBackend(kernel, min_work=100)
    A = rng.standard_normal((10, 20), dtype=np.float32)
    B = rng.standard_normal((20, 30), dtype=np.float32)
    out = None
    if case == "float64":
        A, B = A.astype(np.float64), B.astype(np.float64)
    elif case == "tiny":
        A, B = A[:2, :3], B[:3, :4]
    elif case == "strided":
        A = A[:, ::2]  # (10, 10), element stride 2
        B = B[:10]
    elif case == "overlap":
        B = rng.standard_normal((20, 20), dtype=np.float32)
        A = np.zeros((20, 20), np.float32)
        A[:10] = rng.standard_normal((10, 20))
        out = A
    elif case == "both_transposed":
        A, B = np.asfortranarray(A), np.asfortranarray(B)
    elif case == "out_fortran":
        out = np.asfortranarray(np.empty((10, 30), np.float32))
    if case == "mismatch":
        with pytest.raises(ValueError):
            backend.mm(A, B[:5])
    else:
        expected = A @ B
        got = backend.mm(A, B, out=out)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    assert kernel.log == []


def test_self_test_accepts_a_correct_backend_and_catches_a_wrong_one(rng):
    ok, err = self_test(WasmBackend(FakeKernel()), rng)
    assert ok and err < 1e-4
    ok, err = self_test(NumpyBackend(), rng)
    assert ok
    bad = WasmBackend(FakeKernel(bug=1e-3))
    ok, err = self_test(bad, rng)
    assert not ok and err >= 1e-3
    assert bad.min_work == 2048  # restored after the test lowered it


ADAM_ARGS = (7e-4, 0.9, 0.999, 3e-9)  # alpha, beta1, beta2, eps_hat


def adam_arrays(rng, n, dtype=np.float32):
    """p, g, m, v with n elements each."""
    return tuple(rng.standard_normal(n).astype(dtype) ** k for k in (1, 1, 1, 2))


def test_backend_adam_update_runs_the_kernel(rng):
    kernel = FakeKernel()
    backend = WasmBackend(kernel)
    p, g, m, v = (a.reshape(5, 7) for a in adam_arrays(rng, 35))  # any shape, contiguous
    want = adam_reference(p, g, m, v, *ADAM_ARGS)
    assert backend.adam_update(p, g, m, v, *ADAM_ARGS) is True
    for got, expected in zip((p, m, v), want, strict=True):
        np.testing.assert_array_equal(got, expected)
    assert kernel.log == ["adam"] and backend.adam_calls == 1


@pytest.mark.parametrize(
    "case", ["no_kernel", "float64", "strided", "size", "empty", "readonly", "overlap"]
)
def test_backend_adam_update_declines_what_the_kernel_cannot_take(rng, case):
    kernel = FakeKernel()
    p, g, m, v = adam_arrays(rng, 12)
    if case == "no_kernel":
        kernel = FakeKernel()
        kernel.adam_update = None  # a gemm.wasm built before the Adam kernel
    elif case == "float64":
        p, g, m, v = adam_arrays(rng, 12, np.float64)
    elif case == "strided":
        g = np.repeat(g, 2)[::2]
    elif case == "size":
        v = v[:11]
    elif case == "empty":
        p, g, m, v = (a[:0] for a in (p, g, m, v))
    elif case == "readonly":
        p.flags.writeable = False
    elif case == "overlap":
        both = np.concatenate([m, v])
        m, v = both[:12], both[6:18]
    before = [a.copy() for a in (p, g, m, v)]
    assert WasmBackend(kernel).adam_update(p, g, m, v, *ADAM_ARGS) is False
    for got, old in zip((p, g, m, v), before, strict=True):
        np.testing.assert_array_equal(got, old)  # untouched: the caller's NumPy path runs
    assert kernel.log == []


def test_adam_with_the_fused_hook_matches_numpy(rng):
    params = [rng.standard_normal(s).astype(np.float32) for s in ((13, 5), (5,), (1,))]
    plain, fused = Adam(learning_rate=1e-2), Adam(learning_rate=1e-2)
    backend = WasmBackend(FakeKernel())
    fused.fused = backend.adam_update
    p_plain, p_fused = [p.copy() for p in params], [p.copy() for p in params]
    for _ in range(3):
        grads = [rng.standard_normal(p.shape).astype(np.float32) for p in params]
        plain.step(p_plain, grads)
        fused.step(p_fused, grads)
    for a, b in zip(p_plain, p_fused, strict=True):
        np.testing.assert_array_equal(a, b)
    assert backend.adam_calls == 9


def test_self_test_catches_a_wrong_adam_kernel(rng):
    ok, _ = self_test(WasmBackend(FakeKernel(adam_bug=1e-3)), rng)
    assert not ok


@pytest.mark.skipif(KERNEL_INSTALLED, reason="the kernel is installed here")
def test_load_wasm_backend_without_the_kernel_returns_none():
    backend, reason = load_wasm_backend()
    assert backend is None
    assert "not installed" in reason


@pytest.mark.skipif(not KERNEL_INSTALLED, reason="needs Pyodide after installGemm (gemm.js)")
def test_installed_kernel_passes_self_test(rng):
    backend, reason = load_wasm_backend(rng)
    assert backend is not None, reason
    X = rng.standard_normal((128, 784), dtype=np.float32)  # (n, in)
    W = rng.standard_normal((784, 64), dtype=np.float32)  # (in, out)
    Z = backend.mm(X, W)  # (n, out)
    assert backend.calls > 0
    np.testing.assert_allclose(Z, X @ W, rtol=1e-4, atol=1e-3)
    p, g, m, v = adam_arrays(rng, 1001)
    want = adam_reference(p, g, m, v, *ADAM_ARGS)
    assert backend.adam_update(p, g, m, v, *ADAM_ARGS)
    for got, expected in zip((p, m, v), want, strict=True):
        np.testing.assert_array_equal(got, expected)
