"""Annotated example configuration files, generated from the models.

``kittiwake config describe-static`` and ``describe-domains`` print every
field with its documentation (the field docstrings), its type and its default.
Optional sections are shown commented out. The output of both passes
``kittiwake config test`` as printed (the DKIM key example, which needs a key
file, is commented out).
"""

from __future__ import annotations

import types
import typing
from typing import Any, Literal

import tomli_w
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

# Example keys for tables keyed by a name, by field name.
EXAMPLE_KEYS = {
    "listeners": "public",
    "domains": "example.org",
    "accounts": "alice",
    "destinations": "alice@example.org",
    "aliases": "team@example.org",
    "selectors": "2026a",
}

# Example values for fields that have no default, by field name.
EXAMPLE_VALUES: dict[str, Any] = {
    "hostname": "mail.example.org",
    "cert_file": "certs/mail.example.org.pem",
    "key_file": "certs/mail.example.org.key",
    "private_key_file": "dkim/2026a.ed25519.pem",
    "localpart": "dmarc-reports",
    "account": "alice",
    "policy_id": "20261124T120000",
    "mailbox": "Inbox",
    "domain": "example.org",
    "addresses": ["alice@example.org"],
}

# Tables keyed by a name whose example entry is shown commented out, with why: the
# example must pass `config test` as printed, and these need a file that does not exist.
COMMENTED_EXAMPLES = {
    "selectors": "it needs its key file; create that in the config directory with\n"
                 "mkdir -p dkim && kittiwake dkim gen ed25519 > dkim/2026a.ed25519.pem",
}


def _strip_optional(annotation: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return annotation, False


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _type_name(tp: Any) -> str:
    tp, optional = _strip_optional(tp)
    origin = typing.get_origin(tp)
    if origin is Literal:
        name = " | ".join(repr(a) for a in typing.get_args(tp))
    elif origin is typing.Annotated:
        name = _type_name(typing.get_args(tp)[0])
    elif origin in (typing.Union, types.UnionType):
        name = " | ".join(_type_name(a) for a in typing.get_args(tp))
    elif origin in (list, dict):
        name = f"{origin.__name__}[{', '.join(_type_name(a) for a in typing.get_args(tp))}]"
    else:
        name = getattr(tp, "__name__", str(tp))
    return name + (" (optional)" if optional else "")


def _comment(text: str | None, indent: str = "") -> list[str]:
    if not text:
        return []
    return [f"{indent}# {line.strip()}".rstrip() for line in text.strip().splitlines()]


def _inline(value: Any) -> str:
    if isinstance(value, dict):
        items = ", ".join(f"{_key(k)} = {_inline(v)}" for k, v in value.items())
        return "{ " + items + " }" if items else "{}"
    if isinstance(value, list):
        return "[" + ", ".join(_inline(v) for v in value) + "]"
    return tomli_w.dumps({"v": value}).strip()[len("v = "):]


def _key(name: str) -> str:
    return name if name.replace("_", "").replace("-", "").isalnum() else f'"{name}"'


def _value_line(name: str, value: Any) -> str:
    return f"{_key(name)} = {_inline(value)}"


def _example(name: str, field: FieldInfo) -> Any:
    if field.default is not PydanticUndefined:
        default = field.default
        if isinstance(default, BaseModel):
            return default.model_dump(mode="json")
        return default
    return EXAMPLE_VALUES.get(name, "")


def describe(model: type[BaseModel], title: str) -> str:
    """The annotated example for a whole file."""
    lines = _comment(model.__doc__ or title)
    lines.append("")
    lines += _render(model, [], commented=False)
    return "\n".join(lines).rstrip() + "\n"


def _table_name(path: list[str]) -> str:
    return ".".join(_key(p) for p in path)


def _render(model: type[BaseModel], path: list[str], commented: bool) -> list[str]:
    prefix = "# " if commented else ""
    scalars: list[str] = []
    tables: list[str] = []
    for name, field in model.model_fields.items():
        tp, optional = _strip_optional(field.annotation)
        origin = typing.get_origin(tp)
        doc = _comment(field.description)
        if _is_model(tp):
            sub_commented = commented or (optional and field.default is None)
            tables.append("")
            tables += doc
            tables.append(("# " if sub_commented else "") + f"[{_table_name([*path, name])}]")
            tables += _render(tp, [*path, name], sub_commented)
        elif origin is dict and _is_model(typing.get_args(tp)[1]):
            key = EXAMPLE_KEYS.get(name, "example")
            why = COMMENTED_EXAMPLES.get(name)
            entry_commented = commented or why is not None
            tables.append("")
            tables += doc
            if why and not commented:
                tables += _comment(f"(an example entry, commented out: {why})")
            tables.append(("# " if entry_commented else "")
                          + f"[{_table_name([*path, name, key])}]")
            tables += _render(typing.get_args(tp)[1], [*path, name, key], entry_commented)
        elif origin is list and _is_model(typing.get_args(tp)[0]):
            tables.append("")
            tables += doc
            tables.append("# (a list of tables; an example entry, commented out:)")
            tables.append(f"# [[{_table_name([*path, name])}]]")
            tables += _render(typing.get_args(tp)[0], [*path, name], True)
        else:
            scalars += doc
            scalars.append(f"# type: {_type_name(field.annotation)}")
            value = _example(name, field)
            if value is None:
                scalars.append(f"# {name} = ...")
            else:
                scalars.append(prefix + _value_line(name, value))
            scalars.append("")
    return scalars + tables
