"""The page's forms read their bounds and defaults from the ExperimentSpec, so the page and the API agree."""

from __future__ import annotations

import re

import pytest

from server.presets import PRESETS
from server.routes.fields import spec_field
from server.spec import DropoutLayerSpec, ExperimentSpec

INPUT = re.compile(r"<input\b[^>]*>")


def _inputs(html: str) -> dict[str, dict[str, str]]:
    """name → attributes of every <input> bound to a spec field."""
    out = {}
    for tag in INPUT.findall(html):
        attrs = dict(re.findall(r'([a-z-]+)="([^"]*)"', tag))
        if "." in attrs.get("name", ""):
            out[attrs["name"]] = attrs
    return out


def _bounds(path: str) -> tuple[float | None, float | None]:
    model = ExperimentSpec
    *parents, name = path.split(".")
    for part in parents:
        model = model.model_fields[part].annotation
    schema = model.model_json_schema()["properties"][name]
    lo = schema.get("minimum", schema.get("exclusiveMinimum"))
    hi = schema.get("maximum", schema.get("exclusiveMaximum"))
    return lo, hi


@pytest.mark.parametrize("page", ["/", "/presets/cnn-lenet-digits"])
def test_every_bounded_spec_input_has_the_specs_bounds(client, page):
    html = client.get(page, follow_redirects=True).text
    inputs = _inputs(html)
    checked = 0
    for name, attrs in inputs.items():
        if "min" not in attrs and "max" not in attrs:
            continue
        lo, hi = _bounds(name)
        assert float(attrs["min"]) == lo and float(attrs["max"]) == hi, (name, attrs, lo, hi)
        checked += 1
    assert checked >= 2, inputs.keys()  # the MLP page has 6, the CNN page 2


def test_learning_rate_and_batch_size_inputs_exist_with_bounds(client):
    inputs = _inputs(client.get("/").text)
    assert float(inputs["training.batch_size"]["max"]) == spec_field("training.batch_size").maximum == 500
    assert float(inputs["training.learning_rate"]["min"]) == 1e-6


def test_added_dropout_layer_takes_the_specs_default_rate(client):
    r = client.get("/presets/cnn-lenet-digits", follow_redirects=True)
    assert 'title="add dropout (rate 0.5) at the end' in r.text  # the button says what it adds
    sid = re.search(r'data-session="([^"]+)"', r.text).group(1)
    n = len(PRESETS["cnn-lenet-digits"]["spec"]["network"]["layers"])
    client.patch(f"/ui/sessions/{sid}/cnn/layers", data={"op": "add_dropout"})
    layers = client.get(f"/api/v1/sessions/{sid}").json()["spec"]["network"]["layers"]
    assert len(layers) == n + 1 and layers[-1] == {"type": "dropout", "rate": 0.5}
    assert DropoutLayerSpec.model_fields["rate"].default == 0.5
