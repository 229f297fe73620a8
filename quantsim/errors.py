"""Exception types: every user-facing error names the bad value and the fix."""

from __future__ import annotations


class QuantsimError(Exception):
    """Base class of quantsim's user-facing errors."""


class FormatError(QuantsimError, ValueError):
    """A number-format spec or rounding name that cannot be used."""


class PrecisionError(QuantsimError, ValueError):
    """A precision policy naming an unknown role, layer or format."""


class DataError(QuantsimError):
    """A data set that is missing, corrupt or malformed."""


class StudyError(QuantsimError):
    """A study file that is malformed."""


class DeviceError(QuantsimError):
    """A device that was asked for but is not available."""


class PerformanceWarning(UserWarning):
    """A setting that makes quantsim run slower than it could, with how to change it."""
