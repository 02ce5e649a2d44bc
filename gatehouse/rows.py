"""Rows of a SELECT written out as SQL, made into models as the ORM would make them.

On the hottest paths (every API request's token, every read of the policy) building a query
with the ORM costs several times running it. Those few statements are written out once per
process; their rows still become models through the backend's converters, so a written-out
read returns exactly what the ORM's would.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from django.db import connection
from django.db.models import Model
from django.db.models.expressions import Col


@dataclass(frozen=True)
class _Part:
    model: type[Model]
    attnames: tuple[str, ...]
    columns: tuple[tuple[Col, tuple], ...]  # each column, and the converters of its values


@dataclass(frozen=True)
class RowReader:
    """The select list of some models' columns, each model under a table alias, and the
    making of one row into those models."""

    columns: str  # for the statement: ``t."id", t."user_id", u."id", …``
    parts: tuple[_Part, ...]

    @classmethod
    def of(cls, *selected: tuple[type[Model], str, Sequence[str] | None]) -> "RowReader":
        """``(model, alias, field names or None for all its columns)``, in select order."""
        quote = connection.ops.quote_name
        parts, listed = [], []
        for model, alias, names in selected:
            fields = [
                field
                for field in model._meta.concrete_fields
                if names is None or field.name in names or field.attname in names
            ]
            columns = tuple(
                (
                    column,
                    tuple(
                        connection.ops.get_db_converters(column)
                        + column.get_db_converters(connection)
                    ),
                )
                for column in (field.get_col(alias) for field in fields)
            )
            parts.append(_Part(model, tuple(field.attname for field in fields), columns))
            listed += [f"{alias}.{quote(column.target.column)}" for column, _ in columns]
        return cls(", ".join(listed), tuple(parts))

    def models(self, row: Sequence) -> list[Model | None]:
        """One model per part, or ``None`` for a part whose key is NULL (an outer join that
        found nothing)."""
        made: list[Model | None] = []
        start = 0
        for part in self.parts:
            values = []
            for value, (column, converters) in zip(
                row[start : start + len(part.columns)], part.columns, strict=True
            ):
                for convert in converters:
                    value = convert(value, column, connection)
                values.append(value)
            start += len(part.columns)
            key = values[part.attnames.index(part.model._meta.pk.attname)]
            made.append(
                None if key is None else part.model.from_db(connection.alias, part.attnames, values)
            )
        return made
