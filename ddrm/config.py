"""Frozen configs that round-trip through JSON, one generic rule for all (diffusers' ``register_to_config``
habit: the fields are the config).

    to_dict(c)       {field: json(value)} over the init fields: a nested config becomes its dict, a tuple a
                     list; a config class with a ``config_tag`` (a family of configs, such as the samplers)
                     adds {tag: its ``name``}
    from_dict(C, d)  C(**{field: value(d[field]) as the field's type}); a family member is chosen by the tag;
                     null for a float is NaN (strict JSON has no NaN); C.__post_init__ validates the result

so ``from_dict(type(c), json.loads(json.dumps(to_dict(c)))) == c`` for every config, and a key C does not
have is a ValueError naming it. ``Config`` gives both as methods. ``option`` marks a field that the command
line offers (``options`` lists them, nested configs included).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Iterator, Optional, Union


def to_dict(config: Any) -> dict[str, Any]:
    """The config as JSON-ready nested dicts (module docstring)."""
    out = {f.name: _to_json(getattr(config, f.name)) for f in dataclasses.fields(config) if f.init}
    tag = getattr(type(config), "config_tag", None)
    return {tag: type(config).name, **out} if tag else out


def _to_json(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_dict(value)
    if isinstance(value, (tuple, list)):
        return [_to_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _to_json(v) for k, v in value.items()}
    return value


def from_dict(cls: type, data: dict[str, Any]) -> Any:
    """An instance of ``cls`` (a dataclass) from ``to_dict``'s form (module docstring); ValueError for keys it
    does not have or values of the wrong kind."""
    if not isinstance(data, dict):
        raise ValueError(f"{cls.__name__}: expected a mapping, got {type(data).__name__}")
    data = dict(data)
    tag = getattr(cls, "config_tag", None)
    if tag and tag in data:
        cls = cls.config_class(data.pop(tag))
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"{cls.__name__} has no setting {', '.join(map(repr, unknown))} "
                         f"(its settings: {', '.join(sorted(names))})")
    return cls(**{k: _from_json(hints[k], v, f"{cls.__name__}.{k}") for k, v in data.items()})


def _from_json(hint: Any, value: Any, where: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return _from_json(arg, value, where)
            except (TypeError, ValueError):
                continue
        raise ValueError(f"{where}: {value!r} is none of {hint}")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{where}: expected a list, got {value!r}")
        each = args[0] if len(args) == 2 and args[1] is Ellipsis else None
        items = [each] * len(value) if each is not None else list(args)
        if len(items) != len(value):
            raise ValueError(f"{where}: expected {len(items)} entries, got {len(value)}")
        return tuple(_from_json(h, v, where) for h, v in zip(items, value))
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return value if isinstance(value, hint) else from_dict(hint, value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is float and value is None:  # strict JSON writes NaN and the infinities as null (stores.jsonio)
        return float("nan")
    if isinstance(hint, type) and hint is not Any and not isinstance(value, hint):
        raise ValueError(f"{where}: expected {hint.__name__}, got {value!r}")
    return value


class Config:
    """``to_dict`` and ``from_dict`` (module docstring) as methods of a frozen dataclass config."""

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        return from_dict(cls, data)


def option(default: Any = None, *, help: str, name: Optional[str] = None, parse: Optional[str] = None,
           choices: Optional[tuple] = None, factory: Any = None):
    """A config field that is also a command-line option ``--<name>`` (default: the field's name, ``_`` as
    ``-``), its text parsed by the parser the command line names ``parse`` (default: by the field's type),
    with ``choices`` and ``help`` (the default is appended where the options are built)."""
    meta = {"help": help, "name": name, "parse": parse, "choices": choices}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def options(cls: type, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], dataclasses.Field, Any]]:
    """(path of field names, the field, its type) of every ``option`` of ``cls``, nested configs included, in
    field order."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if "help" in f.metadata:
            yield path + (f.name,), f, hints[f.name]
        elif isinstance(hints[f.name], type) and dataclasses.is_dataclass(hints[f.name]):
            yield from options(hints[f.name], path + (f.name,))


def option_name(path: tuple[str, ...], f: dataclasses.Field) -> str:
    """The option's name (``--`` and ``-`` for ``_`` make its flag)."""
    return f.metadata.get("name") or path[-1]


def option_paths(cls: type) -> dict[str, tuple[str, ...]]:
    """Every option's name (``option_name``) and the top level's own scalar settings -> where it sits."""
    hints = typing.get_type_hints(cls)
    paths = {f.name: (f.name,) for f in dataclasses.fields(cls) if f.init and not dataclasses.is_dataclass(hints[f.name])}
    paths.update({option_name(p, f): p for p, f, _ in options(cls)})
    return paths


def option_values(config: Any) -> dict[str, Any]:
    """The config's options (and top-level settings) by name, as ``with_options`` takes them."""
    out = {}
    for name, path in option_paths(type(config)).items():
        value = config
        for key in path:
            value = getattr(value, key)
        out[name] = value
    return out


def with_options(config: Any, given: dict[str, Any]) -> Any:
    """``config`` with the options ``given`` by name (``option_name``; a top-level field by its own name) set
    where they sit in its nesting, and validated as a whole; ValueError for a name that is neither."""
    paths = option_paths(type(config))
    unknown = sorted(set(given) - set(paths))
    if unknown:
        raise ValueError(f"{type(config).__name__} has no option {', '.join(map(repr, unknown))} "
                         f"(its options: {', '.join(paths)})")
    data = to_dict(config)
    for name, value in given.items():
        *outer, last = paths[name]
        node = data
        for key in outer:
            node = node[key]
        node[last] = value
    return from_dict(type(config), data)  # built once: the checks see the whole
