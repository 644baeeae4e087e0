"""The page's forms read their bounds and defaults from the ExperimentSpec, so the page and the API agree."""

from __future__ import annotations

import re

import pytest

from server.presets import PRESETS
from server.routes.fields import spec_field
from server.spec import DropoutLayerSpec, ExperimentSpec
from tests.pages import start

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
    schema = next((o for o in schema.get("anyOf", []) if o.get("type") != "null"), schema)  # optional: int | None
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
    assert checked >= 9, inputs.keys()  # with more settings: the MLP page has 12, the CNN page 9


def test_learning_rate_and_batch_size_inputs_exist_with_bounds(client):
    inputs = _inputs(client.get("/").text)
    assert float(inputs["training.batch_size"]["max"]) == spec_field("training.batch_size").maximum == 500
    assert float(inputs["training.learning_rate"]["min"]) == 1e-6


def test_added_dropout_layer_takes_the_specs_default_rate(client):
    r = client.get("/presets/cnn-lenet-digits", follow_redirects=True)
    assert 'title="add dropout (rate 0.5) at the end' in r.text  # the button says what it adds
    sid = start(client, r.text)
    n = len(PRESETS["cnn-lenet-digits"]["spec"]["network"]["layers"])
    client.patch(f"/ui/sessions/{sid}/cnn/layers", data={"op": "add_dropout"})
    layers = client.get(f"/api/v1/sessions/{sid}").json()["spec"]["network"]["layers"]
    assert len(layers) == n + 1 and layers[-1] == {"type": "dropout", "rate": 0.5}
    assert DropoutLayerSpec.model_fields["rate"].default == 0.5


# ------------------------------------------------------------------------------- more settings


def _open(client, page: str = "/") -> str:
    """A page and its first action: its session."""
    return start(client, client.get(page, follow_redirects=True).text)


def _spec(client, sid: str) -> dict:
    return client.get(f"/api/v1/sessions/{sid}").json()["spec"]


MORE = {
    "training.loss": "cross_entropy",
    "training.algorithm": "backprop",
    "training.optimizer": "momentum",
    "training.momentum": "0.5",
    "training.dropout": "0.2",
    "training.batch_norm": ["false", "true"],  # hidden "false", then the ticked checkbox
    "network.init": "tfplayground",
    "training.schedule.kind": "step",
    "training.schedule.warmup_epochs": "5",
    "training.schedule.every": "50",
    "training.schedule.factor": "0.25",
    "stop.at_epoch": "300",
    "stop.test_loss_below": "",
    "stop.patience": "20",
    "stop.restore_best": ["false", "true"],
    "dataset.seed": "7",
    "seed": "9",
}


def test_more_settings_patch_their_spec_fields(client):
    sid = _open(client)
    r = client.patch(f"/ui/sessions/{sid}/run", data=MORE)
    assert r.status_code == 200, r.text
    spec = _spec(client, sid)
    t = spec["training"]
    assert (t["loss"], t["optimizer"], t["momentum"], t["dropout"], t["batch_norm"]) == (
        "cross_entropy",
        "momentum",
        0.5,
        0.2,
        True,
    )
    schedule = {"kind": "step", "warmup_epochs": 5, "every": 50, "factor": 0.25, "epochs": 1000, "floor": 0}
    assert t["schedule"] == schedule
    assert spec["stop"] == {"at_epoch": 300, "test_loss_below": None, "patience": 20, "restore_best": True}
    assert (spec["network"]["init"], spec["dataset"]["seed"], spec["seed"]) == ("tfplayground", 7, 9)
    # the weight seed and the initialisation wait for the reset, and the note says so in words
    assert "the weight seed and the initialisation take effect at the next reset" in r.text
    # the form comes back showing what was set, and the summary names what is switched on
    assert 'value="300"' in r.text and "step schedule" in r.text and "stop at epoch 300" in r.text


def test_emptied_stop_fields_and_unticked_boxes_switch_off(client):
    sid = _open(client)
    client.patch(f"/ui/sessions/{sid}/run", data=MORE)
    off = {"stop.at_epoch": "", "stop.patience": " ", "stop.restore_best": "false", "training.batch_norm": "false"}
    assert client.patch(f"/ui/sessions/{sid}/run", data=off).status_code == 200
    spec = _spec(client, sid)
    assert spec["stop"] == {"at_epoch": None, "test_loss_below": None, "patience": None, "restore_best": False}
    assert spec["training"]["batch_norm"] is False


def test_the_schedule_shows_only_the_fields_its_kind_uses(client):
    sid = _open(client)
    html = client.patch(f"/ui/sessions/{sid}/run", data={"training.schedule.kind": "cosine"}).text
    assert 'id="cosine-epochs"' in html and 'id="floor"' in html and 'id="warmup"' in html
    assert 'id="every"' not in html and 'id="factor"' not in html
    html = client.patch(f"/ui/sessions/{sid}/run", data={"training.schedule.kind": "step"}).text
    assert 'id="every"' in html and 'id="factor"' in html and 'id="floor"' not in html
    html = client.patch(f"/ui/sessions/{sid}/run", data={"training.schedule.kind": "exponential"}).text
    assert 'id="every"' in html and 'id="floor"' in html and "epochs per factor" in html


@pytest.mark.parametrize(
    ("name", "value", "slot", "words"),
    [
        ("training.momentum", "2", "momentum", "momentum can be at most 0.999"),
        ("training.dropout", "0.95", "dropout", "dropout rate can be at most 0.9"),
        ("training.schedule.factor", "1", "factor", "factor must be less than 1"),
        ("training.schedule.every", "0", "every", "epochs per drop must be at least 1"),
        ("stop.at_epoch", "0", "stop-epoch", "stop epoch must be at least 1"),
        ("stop.at_epoch", "1.5", "stop-epoch", "stop epoch must be a whole number"),
        ("stop.test_loss_below", "0", "stop-loss", "target test loss must be more than 0"),
        ("seed", "-1", "weight-seed", "weight seed must be at least 0"),
    ],
)
def test_a_bad_value_is_refused_beside_its_field(client, name, value, slot, words):
    sid = _open(client)
    before = _spec(client, sid)
    data = {name: value, "training.optimizer": "momentum", "training.schedule.kind": "step"}
    r = client.patch(f"/ui/sessions/{sid}/run", data=data)
    assert r.status_code == 422
    error = re.search(rf'<p class="error" id="{slot}-error"[^>]*>([^<]*)</p>', r.text)
    assert error and words in error.group(1), r.text[-3000:]
    assert f'aria-describedby="{slot}-error"' in r.text  # the field points to its error
    assert 'id="more-settings" open' in r.text  # the disclosure stays open to show it
    assert _spec(client, sid) == before


def test_the_perceptron_rule_with_hidden_layers_is_refused_beside_the_algorithm(client):
    sid = _open(client)  # the default network has two hidden layers
    r = client.patch(f"/ui/sessions/{sid}/run", data={"training.algorithm": "perceptron"})
    assert r.status_code == 422
    error = re.search(r'<p class="error" id="algorithm-error"[^>]*>([^<]*)</p>', r.text)
    assert error and "remove the hidden layers" in error.group(1)
    assert "no hidden layers, a sign output, two classes" in r.text  # the picker says how it constrains the net


def test_momentum_is_disabled_with_the_reason_for_optimizers_that_ignore_it(client):
    sid = _open(client)
    html = client.patch(f"/ui/sessions/{sid}/run", data={"training.optimizer": "adam"}).text
    tag = re.search(r'<input id="momentum"[^>]*>', html).group(0)
    assert " disabled" in tag
    assert "only momentum and nesterov use it; adam does not" in html
    html = client.patch(f"/ui/sessions/{sid}/run", data={"training.optimizer": "nesterov"}).text
    assert " disabled" not in re.search(r'<input id="momentum"[^>]*>', html).group(0)


def test_the_cnn_settings_take_momentum_schedule_stop_and_seeds(client):
    sid = _open(client, "/presets/cnn-lenet-digits")
    html = client.get("/presets/cnn-lenet-digits", follow_redirects=True).text
    assert 'id="schedule"' in html and 'id="loss"' not in html and 'id="init"' not in html  # a CNN's head is fixed
    data = {"training.schedule.kind": "cosine", "training.schedule.epochs": "40", "stop.at_epoch": "12", "seed": "3"}
    assert client.patch(f"/ui/sessions/{sid}/cnn/settings", data=data).status_code == 200
    spec = _spec(client, sid)
    assert spec["training"]["schedule"]["kind"] == "cosine" and spec["training"]["schedule"]["epochs"] == 40
    assert spec["stop"]["at_epoch"] == 12 and spec["seed"] == 3
    r = client.patch(f"/ui/sessions/{sid}/cnn/settings", data={"training.schedule.floor": "2"})
    assert r.status_code == 422 and 'id="floor-error"' in r.text
