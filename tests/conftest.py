"""Imported by pytest before the test modules: quantsim first, so that numpy's OpenBLAS loads
with the thread settings quantsim makes (see quantsim/_blas_env.py)."""

import quantsim  # noqa: F401
