"""The array module the layers compute with.

Every data array inside ``quantsim.nn`` is created through ``xp`` so that a CuPy backend can
replace numpy here in one place (``quantsim.backend.get_array_module`` will decide later).
Host-side metadata (counters, RNG seeds) stays plain numpy.
"""

from __future__ import annotations

import numpy as np

xp = np

__all__ = ["xp"]
