"""Checks recorded Stripe sandbox responses against Stripe's published OpenAPI spec.

Usage: check.py SPEC.json RECORDING.json

RECORDING is a JSON list of {"method", "path", "status", "body"} (the path without its query)
and of {"event": body} for webhook events the sandbox delivered. Each response body is checked
against the schema of its operation in the spec (the 200 schema, or `error` for the rest); each
event against `event`, and its `data.object` against the schema of that object's type.

The spec is from 2023-08-16 and the sandbox speaks a newer API version, so a field the spec
does not know, or an enum value it does not list, is accepted only where the typed model of
the official Python SDK (stripe-python, installed from PyPI) has it: that is what Stripe sends
today. Everything else (a wrong type, a null where the spec forbids it, a missing required
field, an unknown field, an unknown enum value) is a violation. Violations are printed, one per
line, and the exit status is 1 if there are any.
"""

import importlib
import json
import pkgutil
import re
import sys
import typing

import stripe
from stripe._list_object import ListObject
from stripe._stripe_object import UntypedStripeObject

NONE = type(None)


def stripe_classes():
    """stripe-python's resource classes by their `object` value (its modules load lazily: import
    them all first; request parameter types are left out)."""
    for module in pkgutil.walk_packages(stripe.__path__, "stripe."):
        if ".params" not in module.name and ".v2" not in module.name:
            importlib.import_module(module.name)
    found = {}
    stack = [stripe.StripeObject]
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        name = getattr(cls, "OBJECT_NAME", None)
        if isinstance(name, str) and name not in found:
            found[name] = cls
    return found


CLASSES = stripe_classes()


def annotations(cls):
    merged = {}
    for base in reversed(cls.__mro__):
        merged.update(getattr(base, "__annotations__", {}) or {})
    return merged


def resolve(py):
    """Turns a forward reference ('Customer') into stripe-python's class of that name."""
    if isinstance(py, typing.ForwardRef):
        return getattr(stripe, py.__forward_arg__, None)
    if isinstance(py, str):
        return getattr(stripe, py, None)
    return py


def alternatives(py):
    py = resolve(py)
    if py is None:
        return []
    origin = typing.get_origin(py)
    if origin is typing.Union:
        out = []
        for arg in typing.get_args(py):
            out.extend(alternatives(arg))
        return out
    return [py]


def py_classes(py):
    return [
        a
        for a in alternatives(py)
        if isinstance(a, type) and issubclass(a, stripe.StripeObject) and a not in (UntypedStripeObject, ListObject)
    ]


def py_literals(py):
    values = set()
    for a in alternatives(py):
        if typing.get_origin(a) is typing.Literal:
            values.update(typing.get_args(a))
    return values


def py_items(py):
    for a in alternatives(py):
        if typing.get_origin(a) in (list, typing.List):
            return typing.get_args(a)[0]
    return None


def py_field(py, name):
    """The annotation of field `name` in any class `py` may be, or None."""
    for cls in py_classes(py):
        ann = annotations(cls)
        if name in ann:
            return ann[name]
    return None


def py_has_field(py, name):
    return any(name in annotations(cls) for cls in py_classes(py))


def py_accepts(value, py, path, errors):
    """Checks a value the spec has no schema for against stripe-python's model alone."""
    alts = alternatives(py)
    if value is None:
        if NONE not in alts and alts:
            errors.append(f"{path}: null, but stripe-python's model does not allow it")
        return
    if isinstance(value, dict):
        for a in alts:
            origin = typing.get_origin(a) or a
            if origin is UntypedStripeObject:
                return  # metadata and the like: any keys
            if origin is ListObject:
                (item,) = typing.get_args(a) or (None,)
                for i, entry in enumerate(value.get("data") or []):
                    py_accepts(entry, item, f"{path}.data[{i}]", errors)
                return
        classes = py_classes(py)
        if not classes:
            if any(typing.get_origin(a) in (dict, typing.Dict) or a is dict for a in alts):
                return
            if any(a is typing.Any for a in alts):
                return
            errors.append(f"{path}: an object where stripe-python has {py}")
            return
        for key, item in value.items():
            field = py_field(py, key)
            if field is None:
                errors.append(f"{path}.{key}: neither the spec nor stripe-python's model has this field")
            else:
                py_accepts(item, field, f"{path}.{key}", errors)
        return
    if isinstance(value, list):
        items = py_items(py)
        if items is None:
            errors.append(f"{path}: a list where stripe-python has {py}")
            return
        for i, item in enumerate(value):
            py_accepts(item, items, f"{path}[{i}]", errors)
        return
    literals = py_literals(py)
    if literals and value not in literals and not any(a in (str, int, bool) and isinstance(value, a) for a in alts):
        errors.append(f"{path}: {value!r} is not one of {sorted(map(str, literals))}")


class Spec:
    def __init__(self, spec):
        self.spec = spec
        self.schemas = spec["components"]["schemas"]
        self.by_resource = {
            s["x-resourceId"]: s for s in self.schemas.values() if isinstance(s, dict) and "x-resourceId" in s
        }
        self.operations = []
        for template, ops in spec["paths"].items():
            literal = "{" not in template
            pattern = re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$")
            self.operations.append((not literal, template.count("/"), pattern, template, ops))
        # Literal paths first (/v1/customers/search before /v1/customers/{customer}).
        self.operations.sort(key=lambda o: (o[0], -o[1]))

    def deref(self, schema):
        while "$ref" in schema:
            schema = self.schemas[schema["$ref"].rsplit("/", 1)[1]]
        return schema

    def response_schema(self, method, path, status):
        for _, _, pattern, template, ops in self.operations:
            if pattern.match(path) and method.lower() in ops:
                responses = ops[method.lower()]["responses"]
                key = "200" if status == 200 else "default"
                schema = responses.get(key, responses.get("default"))
                return template, schema["content"]["application/json"]["schema"]
        return None, None

    def check(self, value, schema, py, path, errors):
        schema = self.deref(schema)
        if value is None:
            if not schema.get("nullable"):
                errors.append(f"{path}: null, but the spec does not allow null here")
            return
        if "anyOf" in schema:
            best = None
            for option in schema["anyOf"]:
                attempt = []
                self.check(value, option, py, path, attempt)
                if not attempt:
                    return
                if best is None or len(attempt) < len(best):
                    best = attempt
            errors.extend(best or [f"{path}: matches none of the spec's alternatives"])
            return
        kind = schema.get("type")
        if kind == "object" or "properties" in schema:
            if not isinstance(value, dict):
                errors.append(f"{path}: expected an object, got {type(value).__name__}")
                return
            if py is None or not py_classes(py):
                # An object with its own type (a list item, an expanded field) brings its model.
                kind = value.get("object")
                py = CLASSES.get(kind, py) if isinstance(kind, str) else py
            properties = schema.get("properties")
            if properties is None:
                extra = schema.get("additionalProperties")
                if isinstance(extra, dict):
                    for key, item in value.items():
                        self.check(item, extra, None, f"{path}.{key}", errors)
                return
            for key in schema.get("required", []):
                # A field Stripe has since removed (stripe-python's model no longer has it) may be missing.
                removed = py is not None and py_classes(py) and not py_has_field(py, key)
                if key not in value and not removed:
                    errors.append(f"{path}.{key}: required by the spec but missing")
            for key, item in value.items():
                field = py_field(py, key) if py is not None else None
                if key in properties:
                    self.check(item, properties[key], field, f"{path}.{key}", errors)
                elif field is not None or (py is not None and py_has_field(py, key)):
                    py_accepts(item, field, f"{path}.{key}", errors)
                else:
                    errors.append(f"{path}.{key}: neither the spec nor stripe-python's model has this field")
            return
        if kind == "array":
            if not isinstance(value, list):
                errors.append(f"{path}: expected an array, got {type(value).__name__}")
                return
            items = py_items(py) if py is not None else None
            for i, item in enumerate(value):
                self.check(item, schema.get("items", {}), items, f"{path}[{i}]", errors)
            return
        expected = {"string": str, "boolean": bool, "integer": int, "number": (int, float)}.get(kind)
        if expected is not None:
            wrong_bool = kind in ("integer", "number") and isinstance(value, bool)
            if not isinstance(value, expected) or wrong_bool:
                errors.append(f"{path}: expected {kind}, got {json.dumps(value)[:60]}")
                return
        enum = schema.get("enum")
        if enum is not None and value not in enum and value not in py_literals(py):
            errors.append(f"{path}: {value!r} is neither in the spec's {enum} nor in stripe-python's model")

    def check_object(self, value, path, errors):
        """Checks an object (an event's data.object) by the schema of its `object` type."""
        kind = value.get("object") if isinstance(value, dict) else None
        kind = kind if isinstance(kind, str) else None
        schema = self.by_resource.get(kind)
        py = CLASSES.get(kind)
        if schema is not None:
            self.check(value, schema, py, path, errors)
        elif py is not None:
            py_accepts(value, py, path, errors)
        else:
            errors.append(f"{path}: object type {kind!r} is unknown to the spec and to stripe-python")


def main():
    spec = Spec(json.load(open(sys.argv[1])))
    recording = json.load(open(sys.argv[2]))
    errors = []
    checked = set()
    for entry in recording:
        if "event" in entry:
            event = entry["event"]
            where = f"event {event.get('type')}"
            spec.check(event, spec.schemas["event"], stripe.Event, where, errors)
            spec.check_object(event.get("data", {}).get("object"), f"{where} data.object", errors)
            checked.add(f"event {event.get('type')}")
            continue
        method, path, status, body = entry["method"], entry["path"], entry["status"], entry["body"]
        template, schema = spec.response_schema(method, path, status)
        where = f"{method} {template or path} ({status})"
        if schema is None:
            # An endpoint newer than the spec: its object's own schema, else stripe-python's model.
            spec.check_object(body, where, errors)
        else:
            spec.check(body, schema, None, where, errors)
        checked.add(where)
    seen = set()
    for error in errors:
        if error not in seen:
            seen.add(error)
            print(error)
    print(f"checked {len(recording)} responses and events ({len(checked)} kinds); {len(seen)} violations", file=sys.stderr)
    sys.exit(1 if seen else 0)


if __name__ == "__main__":
    main()
