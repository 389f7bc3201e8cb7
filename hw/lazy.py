"""Package attributes imported on first use, so that importing a package costs nothing.

A package's ``__init__`` names what it exports and where each name lives, then calls
:func:`install`; ``import hw`` imports no submodule (and no JAX), and ``hw.evaluate`` imports
``hw.cost`` the first time it is read. Commands that need no JAX (``npu-dse presets``,
``--help``) start in a fraction of a second this way.

>>> import sys, types
>>> sys.modules["demo"] = types.ModuleType("demo")
>>> install("demo", {"sqrt": "math", "json": "json:"})
>>> import demo
>>> demo.sqrt(4.0), demo.json.__name__
(2.0, 'json')
"""

from __future__ import annotations

import importlib
import sys
import types


def install(package: str, names: dict[str, str]) -> None:
    """Make ``package``'s attribute ``name`` resolve, on first read, to ``names[name]``.

    A value ``"module"`` means the attribute of that name in ``module``; ``"module:"`` means
    the module itself (a submodule exported under its own name). Where an exported function
    shares its name with the submodule that defines it (``npu_dse.simulate``), the function
    stays the package's attribute when the submodule is imported, as with eager imports."""
    module = sys.modules[package]
    module.__class__ = _LazyModule
    module.__dict__["_lazy_names"] = dict(names)


class _LazyModule(types.ModuleType):
    def __getattr__(self, name: str):
        where = self.__dict__.get("_lazy_names", {}).get(name)
        if where is None:
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
        module_name, whole, _ = where.partition(":")
        module = importlib.import_module(module_name)
        value = module if whole else getattr(module, name)
        self.__dict__[name] = value  # later reads skip __getattr__
        return value

    def __setattr__(self, name: str, value) -> None:
        # The import system binds a submodule to its parent once it has run; an export of the
        # same name defined in that submodule wins, as it would with eager imports.
        where = self.__dict__.get("_lazy_names", {}).get(name, "")
        sub = f"{self.__name__}.{name}"
        if isinstance(value, types.ModuleType) and value.__name__ == sub == where:
            value = getattr(value, name)
        super().__setattr__(name, value)

    def __dir__(self):
        return sorted(set(self.__dict__) | set(self.__dict__.get("_lazy_names", {})))
