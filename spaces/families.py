"""The family table: the spec class of every family name a spec file may give (`family:
resnet`), filled by the `@register_family` class decorator (timm's `@register_model` style).

Each family module decorates its spec class (`spaces.specs`: regnet, anynet, efficientnet;
`spaces.resnet`: resnet). `spaces.registry` imports every family module explicitly, and
`import spaces` (which any `import spaces.<module>` runs first) imports `spaces.registry`,
so every family is registered before any spec file is read. A leaf: it imports nothing.
"""

from __future__ import annotations

# family name -> spec class, in registration order (error messages list them in this order)
FAMILIES: dict[str, type] = {}


def register_family(cls: type) -> type:
    """Register a spec class under its `family` name; returns the class unchanged."""
    name = cls.family
    if not name:
        raise TypeError(f"{cls.__qualname__} has no family name to register under")
    held = FAMILIES.get(name)
    if held is not None and held.__qualname__ != cls.__qualname__:
        raise TypeError(f"family {name!r} is {held.__qualname__}; {cls.__qualname__} cannot be")
    FAMILIES[name] = cls
    return cls
