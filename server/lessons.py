"""Lessons from the lectures: each a preset experiment, a text written for a student, the panels it points
at, and (in tests/test_lessons.py) a check that what the text claims really happens.

The lessons page (server/routes/lessons.py) opens each lesson as its own live session; ``GET
/api/v1/lessons`` lists them. A lesson's ``spec`` is a partial ExperimentSpec (defaults fill the rest);
``variants`` are one-click changes the text asks the student to try, each a partial spec merged into the
lesson's spec (JSON merge: objects key by key, lists replaced).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

# Panels a lesson may point at: ids of elements on the playground pages (the page outlines them).
PANELS = {
    "data": "the data panel (datasets, noise, training share)",
    "network": "the network: each neuron's picture and the weights",
    "output": "the output map with the data points",
    "metrics": "the loss and accuracy table",
    "loss-chart": "the loss (and accuracy) over the epochs",
    "gradients": "the gradient norm per layer",
    "settings": "the training settings on top",
    "landscape": "the loss landscape panel (slice, path, sharpness)",
    "filters": "the CNN's filters",
    "feature-maps": "the CNN's feature maps",
    "confusion": "the confusion matrix",
    "actmax": "activation maximization: what each filter wants to see",
}


@dataclass(frozen=True)
class Variant:
    """A change the text asks the student to try: a button on the lesson page that applies ``patch``."""

    label: str  # the button's words, e.g. "step activation"
    patch: dict[str, Any]  # partial spec, merged into the lesson's spec
    reset: bool = True  # start again from fresh weights after applying it (a side-by-side comparison)


@dataclass(frozen=True)
class Lesson:
    slug: str  # URL name: /lessons/{slug}
    title: str
    topic: str  # the lecture topic it comes from, e.g. "the perceptron"
    kind: Literal["mlp", "cnn"]  # which playground page shows it
    spec: dict[str, Any]  # partial ExperimentSpec
    todo: str  # what to do
    watch: str  # what to watch
    question: str  # one question to answer
    why: str  # the explanation, behind a "show why" toggle
    panels: tuple[str, ...]  # keys of PANELS it highlights
    variants: tuple[Variant, ...] = field(default_factory=tuple)
    status: Literal["ready", "coming"] = "ready"  # "coming": listed, not yet openable (say why in ``todo``)

    def public(self) -> dict[str, Any]:
        """The lesson as ``GET /api/v1/lessons`` lists it."""
        return {
            "slug": self.slug,
            "title": self.title,
            "topic": self.topic,
            "kind": self.kind,
            "status": self.status,
            "spec": self.spec,
            "text": {"todo": self.todo, "watch": self.watch, "question": self.question, "why": self.why},
            "panels": list(self.panels),
            "variants": [{"label": v.label, "patch": v.patch, "reset": v.reset} for v in self.variants],
        }


_CIRCLE_SQUARES = ["x1_sq", "x2_sq"]

_LESSONS: tuple[Lesson, ...] = (
    Lesson(
        slug="perceptron",
        title="The perceptron rule",
        topic="the perceptron",
        kind="mlp",
        spec={
            "dataset": {"name": "gauss", "n": 200},
            "network": {"hidden": []},
            "training": {"algorithm": "perceptron", "learning_rate": 0.01},
        },
        todo=(
            'Press play and let it run for a few seconds. Then press the button "XOR data" and press play'
            ' again. Press "two clouds" to go back.'
        ),
        watch=(
            "Watch the line that splits the output map and the test accuracy in the metrics table. On the two"
            " clouds the line settles between them. On XOR it keeps jumping around."
        ),
        question="Why can no position of the line get more than about half of the XOR points right?",
        why=(
            "A perceptron is one neuron: it adds up its weighted inputs and outputs 1 when the sum is above 0,"
            " otherwise 0. Its boundary is always one straight line. The perceptron rule moves that line only when"
            " a point is on the wrong side, by nudging the weights toward that point. If one straight line can"
            " split the classes, the rule is guaranteed to find one after a finite number of mistakes. XOR puts"
            " the same class in opposite corners, so no single straight line splits it, and the rule never stops"
            " making mistakes."
        ),
        panels=("output", "metrics", "network"),
        variants=(
            Variant("two clouds", {"dataset": {"name": "gauss"}}),
            Variant("XOR data", {"dataset": {"name": "xor"}}),
        ),
    ),
    Lesson(
        slug="xor-hidden-layer",
        title="One hidden layer solves XOR",
        topic="multi-layer perceptrons",
        kind="mlp",
        spec={
            "dataset": {"name": "xor"},
            "network": {"hidden": [{"units": 4, "activation": "tanh"}]},
            "training": {"learning_rate": 0.1},
            "seed": 2,
        },
        todo=(
            'Press play: this network has one hidden layer of four neurons. After a few seconds press "no hidden'
            ' layer" and play again. Press "one hidden layer" to compare once more.'
        ),
        watch=(
            "Watch the output map and the pictures of the four hidden neurons in the network panel. Each neuron"
            " draws one straight line; the output combines them. Compare the test accuracy in the metrics table."
        ),
        question="Which two lines would you draw to separate XOR, and how does the output neuron combine them?",
        why=(
            "Without a hidden layer the output is one weighted sum of x1 and x2, so its boundary is a straight line,"
            " and no straight line separates XOR. A hidden layer gives several neurons, each with its own line and"
            " a bent (nonlinear) activation such as tanh. The output neuron then adds up their answers, so the"
            " boundary can be made of several pieces. Two lines are already enough for XOR. This is why networks"
            " need hidden layers with a nonlinear activation: stacking only linear layers would still give one line."
        ),
        panels=("network", "output", "metrics"),
        variants=(
            Variant("one hidden layer", {"network": {"hidden": [{"units": 4, "activation": "tanh"}]}}),
            Variant("no hidden layer", {"network": {"hidden": []}}),
        ),
    ),
    Lesson(
        slug="activation-functions",
        title="Activation functions side by side",
        topic="activation functions",
        kind="mlp",
        spec={
            "dataset": {"name": "circle"},
            "network": {"hidden": [{"units": 6, "activation": "tanh"}]},
            "training": {"learning_rate": 0.1},
        },
        todo=(
            "Press play with tanh for a few seconds. Then press each activation button in turn (step, sigmoid,"
            " relu, leaky ReLU, softplus, gaussian) and play each one for a few seconds."
        ),
        watch=(
            "Watch the test loss in the loss chart and the shapes inside the hidden neurons in the network panel."
            " With step, read the note under the settings: the hidden neurons' pictures never change."
        ),
        question="Why does the step activation stop learning, although it worked for the perceptron?",
        why=(
            "Backpropagation changes a weight by the slope (derivative) of the loss with respect to that weight,"
            " and the slope passes through each neuron's activation. Sigmoid, tanh, relu, leaky ReLU, softplus and"
            " gaussian all have a slope that is not zero somewhere, so the error can flow back and the hidden"
            " weights move. The step function is flat everywhere except at 0, so its slope is 0: no gradient"
            " reaches the weights that feed it and they never change. Only the output layer can still adapt, so"
            " the loss drops a little and then stops. The perceptron rule does not use slopes, which is why it can"
            " train a single step unit."
        ),
        panels=("network", "loss-chart", "settings"),
        variants=tuple(
            Variant(label, {"network": {"hidden": [{"units": 6, "activation": name}]}})
            for label, name in (
                ("step", "step"),
                ("sigmoid", "sigmoid"),
                ("tanh", "tanh"),
                ("relu", "relu"),
                ("leaky ReLU", "leaky_relu"),
                ("softplus", "softplus"),
                ("gaussian", "gaussian"),
            )
        ),
    ),
    Lesson(
        slug="feature-engineering",
        title="Features instead of layers",
        topic="feature engineering",
        kind="mlp",
        spec={
            "dataset": {"name": "circle"},
            "features": _CIRCLE_SQUARES,
            "network": {"hidden": []},
            "training": {"learning_rate": 0.1},
        },
        todo=(
            'This network has no hidden layer; its inputs are x1² and x2². Press play. Then press "only x1,'
            ' x2" and play again; press "squared inputs" to go back.'
        ),
        watch="Watch the output map: with the squared inputs the boundary is a circle. Compare the test accuracy.",
        question="Which formula of x1 and x2 is small inside the circle and large outside it?",
        why=(
            "A network without hidden layers draws a straight line in the space of its inputs. With x1 and x2 as"
            " inputs that is a straight line in the plane, and no line separates a ring from its centre. With x1²"
            " and x2² as inputs, a line w1·x1² + w2·x2² = c is a circle (or an ellipse) in the plane. Choosing good"
            " inputs by hand is called feature engineering. A hidden layer learns such features by itself, which is"
            " why deep networks need less of it."
        ),
        panels=("data", "output", "metrics"),
        variants=(
            Variant("squared inputs", {"features": _CIRCLE_SQUARES}),
            Variant("only x1, x2", {"features": ["x1", "x2"]}),
        ),
    ),
)

LESSONS: dict[str, Lesson] = {lesson.slug: lesson for lesson in _LESSONS}
