"""Kernels: `reference` (readable numpy oracle), `cpu` (numba), `cuda` (numba.cuda)."""
