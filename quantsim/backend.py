"""Array backends: numpy on the CPU, CuPy on CUDA GPUs.

Engine code is written once against an array module ``xp`` (Chainer's ``get_array_module``):

>>> from quantsim import backend
>>> xp = backend.get_array_module(x)        # numpy, or cupy for CuPy arrays
>>> dev = backend.select_device("cuda")     # DeviceError saying what is missing, never a fallback
>>> y = dev.asarray(batch)                  # host data onto the device
>>> backend.to_numpy(y)                     # back to the host

Importing this module never imports CuPy or numba.cuda: CuPy is looked at only when an array
might be a CuPy array (and then only if CuPy is already imported) or when CUDA is asked for.
The probe (`cuda_status`) never raises; `select_device("cuda")` turns its finding into a
`DeviceError` naming what is missing: CuPy, numba-cuda, an NVIDIA driver, or a device.
"""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from quantsim.errors import DeviceError

INSTALL_HINT = "pip install 'quantsim[cuda]' (CuPy for CUDA 12 and numba-cuda)"

__all__ = [
    "CudaStatus", "Device", "INSTALL_HINT", "asarray", "cuda_available", "cuda_status",
    "cupy_module", "get_array_module", "is_device_array", "select_device", "to_device",
    "to_numpy",
]


# -- array modules ----------------------------------------------------------------------------
def cupy_module():
    """The CuPy module if it has already been imported (by the user or by a CUDA device),
    else None. Never imports CuPy, so it is free for numpy-only users."""
    return sys.modules.get("cupy")


def is_device_array(x: Any) -> bool:
    """True for CuPy arrays (and anything else exposing ``__cuda_array_interface__``)."""
    cupy = cupy_module()
    if cupy is not None and isinstance(x, cupy.ndarray):
        return True
    return hasattr(x, "__cuda_array_interface__") and not isinstance(x, np.ndarray)


def get_array_module(*arrays: Any):
    """``cupy`` if any argument is a CuPy array, else ``numpy`` (Chainer's rule)."""
    cupy = cupy_module()
    if cupy is not None:
        for a in arrays:
            if isinstance(a, cupy.ndarray):
                return cupy
    return np


def to_numpy(x: Any) -> np.ndarray:
    """A numpy array with the contents of `x` (a copy from the device for GPU arrays)."""
    cupy = cupy_module()
    if cupy is not None and isinstance(x, cupy.ndarray):
        return cupy.asnumpy(x)
    if hasattr(x, "copy_to_host") and not isinstance(x, np.ndarray):  # numba device array
        return x.copy_to_host()
    return np.asarray(x)


# -- probing ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class CudaStatus:
    """What the CUDA probe found. `available` is True when CuPy, numba-cuda, a driver and at
    least one device are all there; otherwise `missing` names the first thing that is not
    ('cupy', 'numba-cuda', 'driver', 'device') and `reason` says it in words with the fix."""

    available: bool
    missing: str | None = None
    reason: str = ""
    cupy_version: str | None = None
    driver_version: int | None = None
    runtime_version: int | None = None
    device_count: int = 0

    def describe(self) -> str:
        if self.available:
            return (
                f"CUDA available: {self.device_count} device(s), CuPy {self.cupy_version}, "
                f"driver {_cuda_version(self.driver_version)}, "
                f"runtime {_cuda_version(self.runtime_version)}"
            )
        return self.reason


def _cuda_version(v: int | None) -> str:
    if not v:
        return "unknown"
    return f"{v // 1000}.{(v % 1000) // 10}"


def _import(name: str):
    """importlib.import_module (a seam for the tests)."""
    return importlib.import_module(name)


def _probe() -> CudaStatus:
    try:
        cupy = _import("cupy")
    except Exception as exc:  # ImportError, or a broken install raising anything
        return CudaStatus(
            False, "cupy",
            f"CUDA was requested but CuPy cannot be imported ({type(exc).__name__}: {exc}); "
            f"install it with {INSTALL_HINT}",
        )
    version = str(getattr(cupy, "__version__", "?"))
    try:
        runtime = cupy.cuda.runtime
        driver_version = int(runtime.driverGetVersion())
    except Exception as exc:
        return CudaStatus(
            False, "driver",
            f"CUDA was requested and CuPy {version} is installed, but no NVIDIA driver could "
            f"be loaded ({type(exc).__name__}: {exc}); install the NVIDIA driver (libcuda) "
            "for your GPU, or run with --device cpu",
            cupy_version=version,
        )
    try:
        runtime_version = int(runtime.runtimeGetVersion())
    except Exception:
        runtime_version = None
    if driver_version == 0:
        return CudaStatus(
            False, "driver",
            f"CUDA was requested and CuPy {version} is installed, but no NVIDIA driver is "
            "installed (driver version 0); install the NVIDIA driver, or run with --device cpu",
            cupy_version=version, driver_version=driver_version,
            runtime_version=runtime_version,
        )
    try:
        count = int(runtime.getDeviceCount())
    except Exception as exc:
        hint = ""
        if runtime_version and driver_version < runtime_version:
            hint = (
                f" The driver supports CUDA {_cuda_version(driver_version)} but CuPy was built "
                f"for CUDA {_cuda_version(runtime_version)}: update the driver or install "
                "the CuPy package for your CUDA version."
            )
        return CudaStatus(
            False, "device",
            f"CUDA was requested but no CUDA device could be opened "
            f"({type(exc).__name__}: {exc}).{hint} Check `nvidia-smi` and "
            "CUDA_VISIBLE_DEVICES, or run with --device cpu",
            cupy_version=version, driver_version=driver_version,
            runtime_version=runtime_version,
        )
    if count < 1:
        return CudaStatus(
            False, "device",
            f"CUDA was requested, CuPy {version} and the NVIDIA driver "
            f"{_cuda_version(driver_version)} are installed, but no CUDA device is visible; "
            "check `nvidia-smi` and CUDA_VISIBLE_DEVICES, or run with --device cpu",
            cupy_version=version, driver_version=driver_version,
            runtime_version=runtime_version,
        )
    try:
        _import("numba.cuda")
    except Exception as exc:
        return CudaStatus(
            False, "numba-cuda",
            f"CUDA was requested and a GPU is there, but numba's CUDA target cannot be "
            f"imported ({type(exc).__name__}: {exc}); quantsim's GPU quantization kernels "
            f"need it: {INSTALL_HINT}",
            cupy_version=version, driver_version=driver_version,
            runtime_version=runtime_version, device_count=count,
        )
    return CudaStatus(
        True, cupy_version=version, driver_version=driver_version,
        runtime_version=runtime_version, device_count=count,
    )


_STATUS: CudaStatus | None = None


def cuda_status(refresh: bool = False) -> CudaStatus:
    """Probe CUDA once (cached; `refresh=True` probes again). Never raises."""
    global _STATUS
    if _STATUS is None or refresh:
        try:
            _STATUS = _probe()
        except Exception as exc:  # the probe itself must never take the program down
            _STATUS = CudaStatus(False, "cupy", f"CUDA probe failed: {exc!r}")
    return _STATUS


def cuda_available() -> bool:
    """True when `select_device("cuda")` would succeed."""
    return cuda_status().available


# -- devices ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Device:
    """A compute device: ``Device("cpu")`` or ``Device("cuda", index)``; get one from
    `select_device`, which checks that it exists."""

    kind: str = "cpu"
    index: int = 0

    def __str__(self) -> str:
        return "cpu" if self.kind == "cpu" else f"cuda:{self.index}"

    @property
    def is_cuda(self) -> bool:
        return self.kind == "cuda"

    @property
    def xp(self):
        """The array module arrays on this device use (numpy or cupy)."""
        if self.kind == "cpu":
            return np
        return _import("cupy")

    def asarray(self, x: Any, dtype: Any = None):
        """`x` as an array on this device (no copy when it is already there with that dtype)."""
        if self.kind == "cpu":
            return np.asarray(to_numpy(x), dtype=dtype)
        cupy = _import("cupy")
        with cupy.cuda.Device(self.index):
            return cupy.asarray(x, dtype=dtype)

    def use(self) -> None:
        """Make this the current CUDA device of the calling thread (new CuPy arrays and
        kernels go there); no-op on the CPU."""
        if self.kind == "cuda":
            _import("cupy").cuda.Device(self.index).use()

    def synchronize(self) -> None:
        """Wait for the device's queued work (no-op on the CPU)."""
        if self.kind == "cuda":
            cupy = _import("cupy")
            with cupy.cuda.Device(self.index):
                cupy.cuda.get_current_stream().synchronize()


CPU = Device("cpu")


def _parse_device(name: str | Device) -> Device:
    if isinstance(name, Device):
        return name
    if not isinstance(name, str):
        raise DeviceError(f"device must be 'cpu' or 'cuda' (or 'cuda:N'), got {name!r}")
    text = name.strip().lower()
    if text == "cpu":
        return CPU
    kind, sep, index = text.partition(":")
    if kind in ("cuda", "gpu"):
        if not sep:
            return Device("cuda", 0)
        if index.isdigit():
            return Device("cuda", int(index))
    raise DeviceError(f"unknown device {name!r}; use 'cpu', 'cuda' or 'cuda:N' (N = GPU index)")


def select_device(name: str | Device = "cpu") -> Device:
    """The device named `name` ('cpu', 'cuda', 'cuda:N'), checked to be usable.

    Asking for CUDA where it is not available raises `DeviceError` saying what is missing
    (CuPy, numba-cuda, the NVIDIA driver, a device); there is never a silent CPU fallback.
    """
    device = _parse_device(name)
    if not device.is_cuda:
        return device
    status = cuda_status()
    if not status.available:
        raise DeviceError(status.reason)
    tf32 = os.environ.get("CUPY_TF32", "0").strip()
    if tf32 not in ("", "0"):
        raise DeviceError(
            f"CUPY_TF32={tf32} makes cuBLAS round the inputs of float32 products to TF32 "
            "(10 fraction bits) behind quantsim's back; unset it (to simulate TF32, use the "
            "tf32 format, e.g. weights=tf32)"
        )
    if device.index >= status.device_count:
        raise DeviceError(
            f"{device} was requested but only {status.device_count} CUDA device(s) are visible "
            f"(cuda:0 .. cuda:{status.device_count - 1}); check CUDA_VISIBLE_DEVICES"
        )
    return device


def to_device(x: Any, device: str | Device = "cpu"):
    """`x` on `device` (numpy array for 'cpu', CuPy array for 'cuda'); checks the device."""
    return select_device(device).asarray(x)


def asarray(x: Any, dtype: Any = None, device: str | Device | None = None):
    """An array of `x` with `dtype`, on `device`; `device=None` keeps it where it is (numpy
    for host data, CuPy for CuPy arrays)."""
    if device is None:
        return get_array_module(x).asarray(x, dtype=dtype)
    return select_device(device).asarray(x, dtype=dtype)
