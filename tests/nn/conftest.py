"""Fixtures: a fake ``quantsim.precision`` module so binding can be tested before (and
independently of) the real one."""

from __future__ import annotations

import sys
import types
from collections.abc import Callable

import pytest

from quantsim.nn.base import IdentityPoints


class FakePrecision:
    """Installs ``quantsim.precision.make_layer_points`` returning ``factory(layer)``."""

    def __init__(self) -> None:
        self.factory: Callable = lambda layer: IdentityPoints()
        self.calls: list[tuple[str, object, int]] = []

    def make_layer_points(self, layer, precision, seed):
        self.calls.append((layer.name, precision, seed))
        return self.factory(layer)


@pytest.fixture
def fake_precision(monkeypatch: pytest.MonkeyPatch) -> FakePrecision:
    fake = FakePrecision()
    module = types.ModuleType("quantsim.precision")
    module.make_layer_points = fake.make_layer_points
    monkeypatch.setitem(sys.modules, "quantsim.precision", module)
    return fake
