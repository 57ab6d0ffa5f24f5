"""Index function_app.py as the Python worker does on load, without the Functions host.

The host cannot be installed here (tooling-notes.md); these are the checks the worker makes when
it loads the app: one app object, unique function names with one trigger each, parameter names
equal to binding names, output bindings annotated ``func.Out[...]``, and every annotation
accepted by the converter the binding type registers.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import json
import re
import typing
from pathlib import Path
from typing import Any

import azure.functions as func
from azure.functions import meta
from azure.functions.decorators.function_app import FunctionRegister

REPO = Path(__file__).resolve().parents[2]
SETTING = re.compile(r"%([A-Za-z0-9_]+)%")


def load_app() -> FunctionRegister:
    module = importlib.import_module("function_app")
    apps = [v for v in vars(module).values() if isinstance(v, FunctionRegister)]
    assert len(apps) == 1, f"function_app.py must hold exactly one app object, has {len(apps)}"
    return apps[0]


@functools.cache
def indexed_functions() -> tuple[Any, ...]:
    """app.get_functions(), once per process as the worker calls it (a second call on the same
    app object reports every name as a duplicate)."""
    return tuple(load_app().get_functions())


def local_settings() -> dict[str, str]:
    sample = json.loads((REPO / "local.settings.sample.json").read_text())
    values: dict[str, str] = sample["Values"]
    return values


def check_function(function: Any) -> None:
    """The worker's load-time checks for one function; AssertionError naming what is wrong."""
    name = function.get_function_name()
    user_function = function.get_user_function()
    parameters = dict(inspect.signature(user_function).parameters)
    hints = typing.get_type_hints(user_function)
    bindings = function.get_bindings()
    triggers = [b for b in bindings if b.type.endswith("Trigger")]
    assert len(triggers) == 1, f"{name}: {len(triggers)} triggers"
    bound = {b.name for b in bindings if b.name != "$return"}
    # As the worker does: a `context` parameter no binding names receives the invocation
    # context (AsgiFunctionApp's HTTP function has one), and `$return` is the return value.
    if "context" in parameters and "context" not in bound:
        parameters.pop("context")
        assert hints.get("context", func.Context) is func.Context, f"{name}: context annotation"
    assert set(parameters) == bound, f"{name}: parameters != bindings"
    registry = meta.get_binding_registry()
    for binding in bindings:
        annotation = hints.get(binding.name)
        converter = registry.get(binding.type)
        assert converter is not None, f"{name}: no converter for {binding.type}"
        if binding.name == "$return":
            returned = hints.get("return")
            assert returned is None or converter.check_output_type_annotation(returned), name
        elif str(binding.direction).endswith("OUT"):
            assert typing.get_origin(annotation) is func.Out, f"{name}.{binding.name}: not Out[]"
            inner = typing.get_args(annotation)[0]
            assert converter.check_output_type_annotation(inner), f"{name}.{binding.name}"
        else:
            assert converter.check_input_type_annotation(annotation), f"{name}.{binding.name}"
    settings = local_settings()
    for value in json.loads(function.get_function_json())["bindings"]:
        for text in (v for v in value.values() if isinstance(v, str)):
            for setting in SETTING.findall(text):
                assert setting in settings, f"{name}: %{setting}% not in local.settings.sample"
