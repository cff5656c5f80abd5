"""New, unsaved model instances for the append path, at the cost of filling a dict.

An append builds an entry and one or two projection rows per event, and ``Model.__init__``
was a quarter of the service layer's CPU on a 1,000-event batch: it walks every field and sets
each through its descriptor. A new row needs none of that: its field values live in the
instance's ``__dict__`` under their attnames, as ``__init__`` would leave them, so they are put
there directly. Models with ``pre_init``/``post_init`` receivers take ``__init__`` still.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any, TypeVar

from django.db import models
from django.db.models.base import ModelState
from django.db.models.signals import post_init, pre_init

M = TypeVar("M", bound=models.Model)


@dataclass(frozen=True, slots=True)
class _Fields:
    constant_defaults: dict[str, Any]  # attname: default, for fields whose default is a value
    callable_defaults: tuple[models.Field[Any, Any], ...]  # evaluated for every row
    attnames: frozenset[str]
    # name: (forward relation, the attname of the field it points to), given as an object
    relations: dict[str, tuple[models.Field[Any, Any], str]]


@cache
def _fields(model: type[models.Model]) -> _Fields:
    concrete = model._meta.concrete_fields
    return _Fields(
        constant_defaults={f.attname: f.get_default() for f in concrete if not _computed(f)},
        callable_defaults=tuple(f for f in concrete if _computed(f)),
        attnames=frozenset(f.attname for f in concrete),
        relations={
            f.name: (f, f.target_field.attname)  # type: ignore[attr-defined]
            for f in concrete
            if f.is_relation
        },
    )


def _computed(field: models.Field[Any, Any]) -> bool:
    return field.has_default() and callable(field.default)


def unsaved(model: type[M], **values: Any) -> M:
    """``model(**values)``, for values that are already their fields' Python values.

    A relation given as an object (``entry=entry``) stores the key it points to and keeps the
    object cached, as ``__init__`` does; fields not given take their defaults.

    :raises TypeError: a name that is not a concrete field of ``model``.
    """
    if (pre_init.receivers or post_init.receivers) and (
        pre_init.has_listeners(model) or post_init.has_listeners(model)
    ):
        return model(**values)
    fields = _fields(model)
    row = model.__new__(model)
    state = row.__dict__
    state.update(fields.constant_defaults)
    for field in fields.callable_defaults:
        state[field.attname] = field.get_default()
    related = []
    for name, value in values.items():
        if name in fields.relations:
            relation, target = fields.relations[name]
            state[relation.attname] = None if value is None else getattr(value, target)
            related.append((relation, value))
        elif name in fields.attnames:
            state[name] = value
        else:
            raise TypeError(f"{model.__name__}() got an unexpected field {name!r}")
    row._state = ModelState()
    for relation, value in related:
        relation.set_cached_value(row, value)  # type: ignore[attr-defined]
    return row
