"""quantsim.backend: array-module selection, devices, and the CUDA probe's error messages.

The probe is exercised with fake CuPy modules standing in for each missing piece (CuPy, the
driver, a device, numba-cuda); `gpu` tests use the real CuPy and skip without a GPU.
"""

from __future__ import annotations

import os
import subprocess
import sys
import types

import numpy as np
import pytest

from quantsim import backend
from quantsim.errors import DeviceError, QuantsimError


@pytest.fixture(autouse=True)
def fresh_probe():
    """Every test sees a fresh probe, and leaves the real one for the others."""
    saved = backend._STATUS
    backend._STATUS = None
    yield
    backend._STATUS = saved


class FakeArray:
    """Stands in for cupy.ndarray."""

    def __init__(self, data):
        self.data = np.asarray(data)


def fake_cupy(*, driver=12040, runtime_version=12040, devices=1, driver_error=None,
              count_error=None):
    def driver_get_version():
        if driver_error is not None:
            raise driver_error
        return driver

    def get_device_count():
        if count_error is not None:
            raise count_error
        return devices

    runtime = types.SimpleNamespace(
        driverGetVersion=driver_get_version,
        runtimeGetVersion=lambda: runtime_version,
        getDeviceCount=get_device_count,
    )
    return types.SimpleNamespace(
        __version__="13.9.9", ndarray=FakeArray, cuda=types.SimpleNamespace(runtime=runtime),
        asnumpy=lambda a: a.data.copy(),
    )


def use_modules(monkeypatch, **modules):
    """Make backend._import see these modules (None: not installed)."""

    def fake_import(name):
        if name in modules:
            if modules[name] is None:
                raise ImportError(f"No module named {name!r}")
            return modules[name]
        raise ImportError(f"No module named {name!r}")

    monkeypatch.setattr(backend, "_import", fake_import)


# -- import and array modules -----------------------------------------------------------------
def test_import_touches_neither_cupy_nor_numba_cuda():
    code = (
        "import sys, quantsim.backend as b; b.get_array_module(1.0); b.select_device('cpu');"
        "print('cupy' in sys.modules, 'numba.cuda' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_numpy_arrays_use_numpy():
    x = np.zeros(3, np.float32)
    assert backend.get_array_module(x) is np
    assert backend.get_array_module(x, 1.0, None) is np
    assert backend.get_array_module() is np
    assert not backend.is_device_array(x)


def test_cupy_arrays_use_cupy(monkeypatch):
    cupy = fake_cupy()
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    a = FakeArray([1.0, 2.0])
    assert backend.get_array_module(np.zeros(2), a) is cupy
    assert backend.get_array_module(np.zeros(2)) is np
    assert backend.is_device_array(a)
    np.testing.assert_array_equal(backend.to_numpy(a), [1.0, 2.0])


def test_cuda_array_interface_objects_count_as_device_arrays():
    class DevArr:
        __cuda_array_interface__ = {}

        def copy_to_host(self):
            return np.arange(3)

    assert backend.is_device_array(DevArr())
    np.testing.assert_array_equal(backend.to_numpy(DevArr()), np.arange(3))


def test_to_numpy_and_asarray_on_host():
    x = np.arange(4, dtype=np.float32)
    assert backend.to_numpy(x) is x
    np.testing.assert_array_equal(backend.to_numpy([1, 2]), [1, 2])
    y = backend.asarray([1, 2], dtype=np.float32)
    assert isinstance(y, np.ndarray) and y.dtype == np.float32
    z = backend.to_device(y, "cpu")
    assert isinstance(z, np.ndarray)
    np.testing.assert_array_equal(z, y)
    assert backend.asarray(x, device="cpu") is x


# -- devices ----------------------------------------------------------------------------------
def test_cpu_device():
    dev = backend.select_device("cpu")
    assert dev == backend.Device("cpu") and str(dev) == "cpu" and not dev.is_cuda
    assert dev.xp is np
    dev.synchronize()
    assert backend.select_device(dev) is dev
    assert backend.select_device(" CPU ") == dev


@pytest.mark.parametrize("name", ["tpu", "cuda:x", "cuda:", "", "cpu:0"])
def test_unknown_device_names(name):
    with pytest.raises(DeviceError, match="use 'cpu', 'cuda' or 'cuda:N'"):
        backend.select_device(name)


def test_device_name_must_be_a_string():
    with pytest.raises(DeviceError, match="got 3"):
        backend.select_device(3)


def test_device_error_is_a_quantsim_error():
    assert issubclass(DeviceError, QuantsimError)


# -- what is missing --------------------------------------------------------------------------
def test_missing_cupy(monkeypatch):
    use_modules(monkeypatch, cupy=None)
    status = backend.cuda_status()
    assert not status.available and status.missing == "cupy"
    with pytest.raises(DeviceError) as err:
        backend.select_device("cuda")
    msg = str(err.value)
    assert "CuPy" in msg and "pip install 'quantsim[cuda]'" in msg
    assert not backend.cuda_available()


def test_cupy_import_crashing_is_reported_not_raised(monkeypatch):
    def boom(name):
        raise OSError("libcudart.so.12: cannot open shared object file")

    monkeypatch.setattr(backend, "_import", boom)
    status = backend.cuda_status()
    assert status.missing == "cupy" and "libcudart" in status.reason


def test_missing_driver(monkeypatch):
    err = RuntimeError("CUDA driver library could not be found")
    use_modules(monkeypatch, cupy=fake_cupy(driver_error=err))
    with pytest.raises(DeviceError) as info:
        backend.select_device("cuda")
    msg = str(info.value)
    assert backend.cuda_status().missing == "driver"
    assert "CuPy 13.9.9 is installed" in msg and "NVIDIA driver" in msg and "--device cpu" in msg


def test_driver_version_zero_means_no_driver(monkeypatch):
    use_modules(monkeypatch, cupy=fake_cupy(driver=0))
    with pytest.raises(DeviceError, match="no NVIDIA driver"):
        backend.select_device("cuda")


def test_no_device(monkeypatch):
    use_modules(monkeypatch, cupy=fake_cupy(devices=0), **{"numba.cuda": types.ModuleType("x")})
    with pytest.raises(DeviceError) as info:
        backend.select_device("cuda")
    assert backend.cuda_status().missing == "device"
    assert "no CUDA device is visible" in str(info.value)
    assert "CUDA_VISIBLE_DEVICES" in str(info.value)


def test_driver_too_old_for_cupy(monkeypatch):
    cupy = fake_cupy(driver=11020, runtime_version=12040,
                     count_error=RuntimeError("cudaErrorInsufficientDriver"))
    use_modules(monkeypatch, cupy=cupy)
    with pytest.raises(DeviceError) as info:
        backend.select_device("cuda")
    msg = str(info.value)
    assert "supports CUDA 11.2" in msg and "built for CUDA 12.4" in msg


def test_missing_numba_cuda(monkeypatch):
    use_modules(monkeypatch, cupy=fake_cupy(), **{"numba.cuda": None})
    with pytest.raises(DeviceError) as info:
        backend.select_device("cuda")
    assert backend.cuda_status().missing == "numba-cuda"
    assert "numba" in str(info.value) and "quantsim[cuda]" in str(info.value)


def test_available_cuda_and_device_index(monkeypatch):
    use_modules(monkeypatch, cupy=fake_cupy(devices=2), **{"numba.cuda": types.ModuleType("x")})
    status = backend.cuda_status()
    assert status.available and status.device_count == 2
    assert "2 device(s)" in status.describe() and "driver 12.4" in status.describe()
    assert backend.select_device("cuda") == backend.Device("cuda", 0)
    dev = backend.select_device("cuda:1")
    assert str(dev) == "cuda:1" and dev.is_cuda
    assert backend.select_device("gpu") == backend.Device("cuda", 0)
    with pytest.raises(DeviceError, match="only 2 CUDA device"):
        backend.select_device("cuda:2")


def test_tf32_products_are_refused(monkeypatch):
    use_modules(monkeypatch, cupy=fake_cupy(), **{"numba.cuda": types.ModuleType("x")})
    monkeypatch.setenv("CUPY_TF32", "1")
    with pytest.raises(DeviceError, match="CUPY_TF32=1 .* TF32"):
        backend.select_device("cuda")
    monkeypatch.setenv("CUPY_TF32", "0")
    assert backend.select_device("cuda").is_cuda


def test_use_on_the_cpu_is_a_no_op(monkeypatch):
    use_modules(monkeypatch, cupy=None)  # must not even look for CuPy
    backend.CPU.use()


def test_probe_is_cached_and_refreshable(monkeypatch):
    use_modules(monkeypatch, cupy=None)
    first = backend.cuda_status()
    use_modules(monkeypatch, cupy=fake_cupy(devices=1), **{"numba.cuda": types.ModuleType("x")})
    assert backend.cuda_status() is first
    assert backend.cuda_status(refresh=True).available


def test_real_probe_never_raises():
    status = backend.cuda_status(refresh=True)
    assert isinstance(status.reason, str)
    if not status.available:
        with pytest.raises(DeviceError, match=status.reason[:30].replace("(", r"\(")):
            backend.select_device("cuda")


# -- real hardware ----------------------------------------------------------------------------
def _have_cuda() -> bool:
    saved = backend._STATUS
    try:
        return backend.cuda_status(refresh=True).available
    finally:
        backend._STATUS = saved


gpu = pytest.mark.skipif(not _have_cuda(), reason="needs a CUDA GPU with CuPy (quantsim[cuda])")


@pytest.mark.gpu
@gpu
def test_round_trip_on_gpu():
    import cupy

    dev = backend.select_device("cuda")
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    d = backend.to_device(x, dev)
    assert isinstance(d, cupy.ndarray) and backend.get_array_module(d) is cupy
    assert dev.xp is cupy and backend.is_device_array(d)
    assert backend.asarray(d) is d
    dev.synchronize()
    np.testing.assert_array_equal(backend.to_numpy(d), x)
    np.testing.assert_array_equal(backend.to_device(d, "cpu"), x)


@pytest.mark.gpu
@gpu
def test_blas_products_agree_on_exact_data():
    dev = backend.select_device("cuda")
    rng = np.random.default_rng(0)
    a = rng.integers(-8, 8, size=(16, 32)).astype(np.float32)
    b = rng.integers(-8, 8, size=(32, 8)).astype(np.float32)
    xp = dev.xp
    np.testing.assert_array_equal(backend.to_numpy(xp.asarray(a) @ xp.asarray(b)), a @ b)


@pytest.mark.parametrize("name,default,user", [("OPENBLAS_THREAD_TIMEOUT", "4", "12"),
                                               ("OMP_WAIT_POLICY", "PASSIVE", "ACTIVE")])
def test_importing_quantsim_first_shortens_thread_spinning(name, default, user):
    """quantsim sets OPENBLAS_THREAD_TIMEOUT and OMP_WAIT_POLICY (before numpy loads OpenBLAS
    and numba its OpenMP layer) unless they are set."""
    code = f"import os, quantsim; print(os.environ['{name}'])"
    env = {k: v for k, v in os.environ.items() if k != name}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == default
    env[name] = user
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == user


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_importing_quantsim_keeps_large_buffers_in_the_heap():
    """On glibc, `import quantsim` raises the mmap and trim thresholds (mallopt) unless
    QUANTSIM_MALLOC_TUNING=0; a 16 MiB buffer then comes from the heap (glibc's mmapped chunks
    carry the IS_MMAPPED bit, 0x2, in the size word before the block)."""
    code = ("import ctypes, quantsim\n"
            "libc = ctypes.CDLL('libc.so.6'); libc.malloc.restype = ctypes.c_void_p\n"
            "p = libc.malloc(16 << 20)\n"
            "size_word = ctypes.c_size_t.from_address(p - ctypes.sizeof(ctypes.c_size_t)).value\n"
            "print(quantsim.MALLOC_TUNED, bool(size_word & 2))")
    env = {k: v for k, v in os.environ.items() if k != "QUANTSIM_MALLOC_TUNING"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["True", "False"]
    env["QUANTSIM_MALLOC_TUNING"] = "0"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "True"]
