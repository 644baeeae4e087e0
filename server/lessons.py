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
    sweep: dict[str, Any] | None = None  # a SweepSpec the lesson runs (its page's "run the sweep" button)

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
            "sweep": self.sweep,
        }


_CIRCLE_SQUARES = ["x1_sq", "x2_sq"]
_ALL_FEATURES = ["x1", "x2", "x1_sq", "x2_sq", "x1x2", "sin_x1", "sin_x2"]
# The width sweep of the double-descent lesson (and of examples/double_descent.py, the README's example).
_DOUBLE_DESCENT: dict[str, Any] = {
    "name": "double descent: test loss against width",
    "base": {
        "problem": "regression",
        "dataset": {"name": "plane", "n": 60, "noise": 50},
        "features": _ALL_FEATURES,
        "network": {"hidden": [{"units": 12, "activation": "tanh"}]},
        "training": {"optimizer": "adam", "learning_rate": 0.01, "batch_size": 30},
    },
    "grid": {"network.hidden": [[w] for w in (1, 2, 4, 8, 12, 16, 32, 64)], "seed": list(range(8))},
    "epochs": 2000,
    "record_every": 100,
}
_SIGMOID_8 = {"units": 8, "activation": "sigmoid"}
_RELU_8 = {"units": 8, "activation": "relu"}
_CONV_4 = {"type": "conv", "filters": 4, "kernel": 3, "padding": "same", "activation": "relu"}
_CONV_8 = {**_CONV_4, "filters": 8}
_ALL_FEATURES = ["x1", "x2", "x1_sq", "x2_sq", "x1x2", "sin_x1", "sin_x2"]

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
    Lesson(
        slug="learning-rate",
        title="The learning rate: too high, too low, just right",
        topic="gradient descent",
        kind="mlp",
        spec={
            "speed": 100,
            "problem": "regression",
            "dataset": {"name": "plane", "n": 200},
            "network": {"hidden": [{"units": 4, "activation": "tanh"}]},
            "training": {"learning_rate": 0.03},
        },
        todo=(
            'The network fits a tilted plane. Press play with the rate 0.03 for a few seconds. Then press "too'
            ' high" and play, then "too low" and play, and "just right" to go back. Each button starts from the'
            " same fresh weights."
        ),
        watch=(
            "Watch the training loss in the loss chart and the status next to the play button. With the high rate"
            " the status turns to diverged after a few epochs. With the low rate the loss line is almost flat."
        ),
        question="Why does a bigger step not always get you to the bottom of the valley faster?",
        why=(
            "Gradient descent moves every weight a small step downhill: the step is the learning rate times the"
            " slope of the loss. If the step is too long, it jumps over the bottom of the valley and lands higher"
            " on the other side; each jump is bigger than the last, until the numbers overflow (the run diverges)."
            " If the step is too short, every step is correct but tiny, so thousands of epochs barely move the"
            " loss. A good rate is the largest one that still makes the loss fall steadily."
        ),
        panels=("loss-chart", "metrics", "settings"),
        variants=(
            Variant("too high", {"training": {"learning_rate": 3.0}}),
            Variant("too low", {"training": {"learning_rate": 0.00001}}),
            Variant("just right", {"training": {"learning_rate": 0.03}}),
        ),
    ),
    Lesson(
        slug="momentum-adam",
        title="Momentum and Adam against plain gradient descent",
        topic="optimizers",
        kind="mlp",
        spec={
            "speed": 100,
            "dataset": {"name": "spiral", "n": 200},
            "network": {"hidden": [{"units": 8, "activation": "tanh"}] * 2},
            "training": {"optimizer": "sgd", "learning_rate": 0.01},
        },
        todo=(
            "Press play with plain gradient descent (sgd) for a few seconds and note the training loss. Then"
            ' press "momentum" and play for the same time, then "Adam". Press "plain sgd" to compare again.'
        ),
        watch=(
            "Watch the training loss in the loss chart and the spiral arms in the output map. All three use the"
            " same learning rate 0.01 and start from the same weights."
        ),
        question="Why does adding up the past steps help on a long, gently sloping valley?",
        why=(
            "Plain gradient descent (sgd) takes each step from the current slope only, so on a flat stretch it"
            " crawls and in a narrow valley it zig-zags from wall to wall. Momentum keeps a running sum of the past"
            " steps (a velocity, 0.9 of the old one plus the new slope): steps that agree add up, steps that zig-zag"
            " cancel. Adam also divides each weight's step by a running average of its slope's size, so weights with"
            " small slopes get bigger steps. Both get much further than sgd in the same number of epochs."
        ),
        panels=("loss-chart", "output", "settings"),
        variants=(
            Variant("plain sgd", {"training": {"optimizer": "sgd"}}),
            Variant("momentum", {"training": {"optimizer": "momentum", "momentum": 0.9}}),
            Variant("Adam", {"training": {"optimizer": "adam"}}),
        ),
    ),
    Lesson(
        slug="learning-rate-schedules",
        title="Learning-rate schedules: big steps first, small steps later",
        topic="optimizers",
        kind="mlp",
        spec={
            "speed": 50,
            "dataset": {"name": "gauss", "n": 200, "noise": 50},
            "network": {"hidden": [{"units": 6, "activation": "relu"}], "init": "he"},
            "training": {
                "loss": "cross_entropy",
                "learning_rate": 1.0,
                "batch_size": 4,
                "schedule": {"kind": "constant"},
            },
        },
        todo=(
            "The two clouds overlap, so the loss cannot reach 0. Press play with the constant rate 1.0 for a few"
            ' seconds. Then press "step decay" (the rate is multiplied by 0.3 every 40 epochs) and play; then try'
            ' "cosine". "constant" goes back.'
        ),
        watch=(
            "Watch the training loss line in the loss chart and the current learning rate drawn under it. With the"
            " constant rate the loss keeps shaking; with a decaying rate it calms down and ends lower."
        ),
        question="Why does the loss keep shaking at a constant rate, even after many epochs?",
        why=(
            "Each step uses a small batch of points (here 4), so its slope is only an estimate of the true slope"
            " and points in a slightly wrong direction. With a big rate these errors make big jumps, and the weights"
            " keep bouncing around the bottom instead of settling. A schedule lowers the rate over time: big steps"
            " early cover the distance quickly, small steps later average out the noise. Step decay cuts the rate"
            " at fixed epochs; cosine lowers it smoothly along half a cosine wave, here to 0 at epoch 150."
        ),
        panels=("loss-chart", "settings", "metrics"),
        variants=(
            Variant("constant", {"training": {"schedule": {"kind": "constant"}}}),
            Variant("step decay", {"training": {"schedule": {"kind": "step", "every": 40, "factor": 0.3}}}),
            Variant("cosine", {"training": {"schedule": {"kind": "cosine", "epochs": 150, "floor": 0.0}}}),
        ),
    ),
    Lesson(
        slug="overfitting",
        title="Overfitting, and the data a model must never see",
        topic="generalization",
        kind="mlp",
        spec={
            "speed": 50,
            "dataset": {"name": "gauss", "n": 200, "noise": 50, "train_percent": 10},
            "features": _ALL_FEATURES,
            "network": {"hidden": [{"units": 8, "activation": "relu"}] * 3, "init": "he"},
            "training": {"optimizer": "adam", "learning_rate": 0.01},
            "stop": {"patience": None, "restore_best": False},
        },
        todo=(
            "Only 10 % of these noisy points train the big network; the rest are the test set. Press play for a"
            ' few seconds. Then press "early stopping" and play again: it stops by itself. "no stopping" goes back.'
        ),
        watch=(
            "Watch both lines in the loss chart: the training loss keeps falling, the test loss falls first and"
            " then climbs. In the output map the boundary bends around single training points. With early"
            " stopping, read the reason in the status."
        ),
        question="At which epoch would you have stopped training, and which loss told you?",
        why=(
            "A big network can memorise a few noisy points: the training loss goes to almost 0, but the boundary"
            " it learns is wrong for new points, so the test loss rises; this is overfitting. The lectures split the"
            " data three ways: the training set fits the weights, a validation set chooses settings such as when to"
            " stop, and the test set is looked at only once at the end, for an honest score. Here the test set is"
            " never trained on, but when you use its loss to decide when to stop, it plays the validation role."
            " Early stopping does this automatically: it stops when the test loss has not improved for 50 epochs and"
            " goes back to the best weights."
        ),
        panels=("loss-chart", "output", "data"),
        variants=(
            Variant("no stopping", {"stop": {"patience": None, "restore_best": False}}),
            Variant("early stopping", {"stop": {"patience": 50, "restore_best": True}}),
        ),
    ),
    Lesson(
        slug="l1-l2",
        title="L1 makes weights zero, L2 makes them small",
        topic="regularization",
        kind="mlp",
        spec={
            "speed": 100,
            "dataset": {"name": "circle", "n": 200, "noise": 20},
            "features": _ALL_FEATURES,
            "network": {"hidden": [{"units": 8, "activation": "tanh"}] * 2},
            "training": {"learning_rate": 0.03, "regularization": "none", "regularization_rate": 0.0},
        },
        todo=(
            "All seven inputs feed two layers of eight neurons. Press play for a few seconds without"
            ' regularization. Then press "L1" and play, then "L2" and play. "none" goes back.'
        ),
        watch=(
            "Watch the lines between the neurons in the network panel: their thickness is the weight's size. With"
            " L1 many lines fade away completely; with L2 all lines get thinner, but hardly any disappears."
        ),
        question="Why does L1 push a weight all the way to 0, while L2 only makes it small?",
        why=(
            "Regularization adds a penalty on the weights to the loss, so the network pays for big weights. L2 adds"
            " the rate times ½ Σ w²: its pull on a weight is proportional to the weight, so it shrinks every weight"
            " but never quite to 0. L1 adds the rate times Σ |w|: its pull is the same size however small the"
            " weight is, so weights the data does not need are pushed all the way to 0. L1 therefore gives a sparse"
            " network (many weights exactly 0) that can switch off inputs it does not need; L2 gives a network of small"
            " weights."
        ),
        panels=("network", "settings", "output"),
        variants=(
            Variant("none", {"training": {"regularization": "none", "regularization_rate": 0.0}}),
            Variant("L1", {"training": {"regularization": "l1", "regularization_rate": 0.003}}),
            Variant("L2", {"training": {"regularization": "l2", "regularization_rate": 0.01}}),
        ),
    ),
    Lesson(
        slug="dropout",
        title="Dropout narrows the gap between training and test",
        topic="regularization",
        kind="mlp",
        spec={
            "speed": 100,
            "dataset": {"name": "gauss", "n": 300, "noise": 50, "train_percent": 30},
            "features": _ALL_FEATURES,
            "network": {"hidden": [{"units": 16, "activation": "relu"}] * 2, "init": "he"},
            "training": {"optimizer": "adam", "learning_rate": 0.01, "dropout": 0.0},
        },
        todo=(
            "Press play without dropout for a few seconds and read the training and test loss in the metrics"
            ' table. Then press "dropout 0.5" and play again from fresh weights. "no dropout" goes back.'
        ),
        watch=(
            "Watch the distance between the training and the test loss lines in the loss chart, and how wiggly the"
            " boundary in the output map is."
        ),
        question="Why does switching off random neurons while training make the network better on new points?",
        why=(
            "Dropout switches off each hidden neuron with a probability (here one half) at every training step,"
            " a different random choice each time. No neuron can then rely on one particular partner, so the"
            " network cannot build the fragile, finely tuned combinations that memorise single noisy points. It is"
            " as if many thinner networks were trained at once and averaged; at test time all neurons are on. The"
            " training loss ends higher, but the gap between training and test loss becomes smaller."
        ),
        panels=("loss-chart", "metrics", "output"),
        variants=(
            Variant("no dropout", {"training": {"dropout": 0.0}}),
            Variant("dropout 0.5", {"training": {"dropout": 0.5}}),
        ),
    ),
    Lesson(
        slug="batch-norm",
        title="Batch normalization gets a deep network moving",
        topic="batch normalization",
        kind="mlp",
        spec={
            "speed": 100,
            "dataset": {"name": "circle", "n": 200},
            "network": {"hidden": [{"units": 8, "activation": "sigmoid"}] * 6},
            "training": {"learning_rate": 0.1, "batch_norm": False},
        },
        todo=(
            "Six layers of sigmoid neurons, plain gradient descent at 0.1. Press play for a few seconds: nothing"
            ' happens. Then press "batch norm" and play again. "no batch norm" goes back.'
        ),
        watch=(
            "Watch the training loss in the loss chart: without batch norm it sits at 0.5 (the loss of always"
            " answering 0). Compare the gradient norm per layer in the gradients panel."
        ),
        question="What does batch norm do to the inputs of each sigmoid, and why does that help the gradient?",
        why=(
            "Batch normalization rescales each neuron's summed input over the batch to mean 0 and spread 1, then"
            " lets the network learn its own scale and shift. A sigmoid has its steepest slope near 0, so"
            " normalized inputs keep every layer where the slope is large. Without it the inputs of the deep layers"
            " drift to where the sigmoid is flat or all alike, and the gradient shrinks at every layer on the way"
            " back. With it the gradient reaches the first layers and the whole network learns at this rate."
        ),
        panels=("loss-chart", "gradients", "settings"),
        variants=(
            Variant("no batch norm", {"training": {"batch_norm": False}}),
            Variant("batch norm", {"training": {"batch_norm": True}}),
        ),
    ),
    Lesson(
        slug="vanishing-gradients",
        title="Vanishing gradients in a deep sigmoid network",
        topic="vanishing gradients",
        kind="mlp",
        spec={
            "speed": 100,
            "dataset": {"name": "spiral", "n": 200},
            "features": _ALL_FEATURES,
            "network": {"hidden": [_SIGMOID_8] * 6, "init": "normal"},
            "training": {"learning_rate": 0.03},
        },
        todo=(
            "Six sigmoid layers whose weights start tiny (σ = 0.01). Press play for a few seconds, then read the"
            ' gradients panel and its diagnosis. Press "ReLU + He init" and play again. "sigmoid, small init"'
            " goes back."
        ),
        watch=(
            "Watch the gradient norm per layer in the gradients panel: a bar for each layer, on a log scale. The"
            " first layer's bar is many powers of ten shorter than the last one's. The loss chart stays flat."
        ),
        question="If each layer passes back at most a quarter of the gradient, how much is left after six layers?",
        why=(
            "Backpropagation multiplies the error by every layer's weights and activation slope on its way back to"
            " the input. The sigmoid's slope is at most ¼, and weights of about 0.01 shrink it further, so each"
            " layer multiplies the gradient by a small number: after six layers almost nothing is left. The first"
            " layers then barely change, and the network learns nothing. ReLU has slope 1 where it is active, and"
            " He initialization picks weights just large enough that the signal keeps its size from layer to"
            " layer, so the gradient arrives whole."
        ),
        panels=("gradients", "loss-chart", "network"),
        variants=(
            Variant("sigmoid, small init", {"network": {"hidden": [_SIGMOID_8] * 6, "init": "normal"}}),
            Variant("ReLU + He init", {"network": {"hidden": [_RELU_8] * 6, "init": "he"}}),
        ),
    ),
    Lesson(
        slug="loss-landscape",
        title="The path down the loss surface; flat and sharp minima",
        topic="loss surfaces",
        kind="mlp",
        spec={
            "speed": 100,
            "dataset": {"name": "circle", "n": 200},
            "network": {"hidden": [{"units": 4, "activation": "tanh"}, {"units": 2, "activation": "tanh"}]},
            "training": {"learning_rate": 1.0, "batch_size": 100},
        },
        todo=(
            "Each step here uses the whole training set (batch size 100). Press play for a few seconds, pause, and"
            ' open the loss landscape panel with the "PCA" directions; then compute the sharpness. Press "small'
            ' batches" (one point per step, at the rate 0.1), play, and compute both again. "whole batch" goes back.'
        ),
        watch=(
            "Watch the path in the landscape panel: it runs from the start downhill into the valley where the"
            " weights are now. Compare the sharpness (the top eigenvalue) of the two runs."
        ),
        question="Why would a flat minimum do better on new points than a sharp one?",
        why=(
            "The loss is a surface over all the weights; the landscape panel cuts a flat slice through it along the"
            " two directions the weights moved most (PCA), and draws the path training took on that slice. The"
            " sharpness is the largest curvature at the current weights (the Hessian's top eigenvalue): large means"
            " a narrow valley, small a wide one. Small batches give noisy steps that cannot stay in a narrow valley,"
            " so they end in wide, flat ones. In a flat minimum a small change of the weights, or of the data,"
            " changes the loss little, which is why flat minima are thought to generalize better."
        ),
        panels=("landscape", "loss-chart", "settings"),
        variants=(
            Variant("whole batch", {"training": {"learning_rate": 1.0, "batch_size": 100}}),
            Variant("small batches", {"training": {"learning_rate": 0.1, "batch_size": 1}}),
        ),
    ),
    Lesson(
        slug="cnn-edge-filters",
        title="Filters become edge detectors; pooling shrugs off small shifts",
        topic="convolutional networks",
        kind="cnn",
        spec={
            "dataset": {"name": "bars", "n": 400, "noise": 5, "train_percent": 70},
            "network": {"kind": "cnn", "layers": [_CONV_4, {"type": "pool", "kind": "max", "size": 4}]},
            "training": {"optimizer": "adam", "learning_rate": 0.01, "batch_size": 20},
        },
        todo=(
            "The images hold horizontal or vertical bars. One layer of four 3×3 filters looks at them, then max"
            " pooling keeps the strongest answer of each 4×4 window. Press play for a few seconds. Then press"
            ' "no pooling" and play again; "max pooling" goes back.'
        ),
        watch=(
            "Watch the four filters: from random speckles they turn into stripes along the rows or the columns,"
            " bright on one side and dark on the other (an edge) or bright in the middle (a line). Then compare"
            " each filter's feature map with the pooled map after it."
        ),
        question="Which filter answers to the top edge of a horizontal bar, and which to its bottom edge?",
        why=(
            "A filter slides over the image and at every place adds up the pixels weighted by its 3×3 weights. A"
            " filter whose top row is positive and bottom row negative gives a large answer exactly where bright"
            " pixels lie above dark ones: it is an edge detector for horizontal edges, and its turned copy detects"
            " vertical edges. Training finds such filters by itself, because the edges' direction is what tells the"
            " two classes apart. Max pooling keeps only the largest answer in each window, so when the bar moves by"
            " a pixel the pooled map barely changes, and neither does the answer computed from it."
        ),
        panels=("filters", "feature-maps", "metrics"),
        variants=(
            Variant("max pooling", {"network": {"layers": [_CONV_4, {"type": "pool", "kind": "max", "size": 4}]}}),
            Variant("no pooling", {"network": {"layers": [_CONV_4]}}),
        ),
    ),
    Lesson(
        slug="activation-maximization",
        title="What each filter wants to see",
        topic="visualizing networks",
        kind="cnn",
        spec={
            "dataset": {"name": "digits", "n": 600, "train_percent": 80},
            "network": {
                "kind": "cnn",
                "layers": [_CONV_8, {"type": "pool", "size": 2}, {"type": "dense", "units": 32, "activation": "relu"}],
            },
            "training": {"optimizer": "adam", "learning_rate": 0.01, "batch_size": 32},
        },
        todo=(
            "A small convnet learns real 8×8 handwritten digits. Press play until the test accuracy passes 90 %,"
            " then pause and open the activation maximization panel for the first layer."
        ),
        watch=(
            "Watch the images in the activation maximization panel, one per filter: each is the input that excites"
            " that filter most. Compare them with the filters themselves and with the feature maps of a digit."
        ),
        question="Which strokes of a digit would make the filter with the brightest diagonal answer most?",
        why=(
            "Activation maximization turns the question around: instead of showing the network an image and"
            " reading a filter's answer, it starts from a grey image and changes the pixels, step by step, in the"
            " direction that raises that filter's average answer (gradient ascent on the input). Small penalties"
            " keep the picture smooth and its pixels in range, so it shows a pattern rather than noise. Each"
            " filter ends with its own picture: strokes at some angle, a blob, an edge; a filter whose weights are"
            " all positive simply wants ink everywhere. The images show which patterns the network looks for."
        ),
        panels=("actmax", "filters", "feature-maps"),
    ),
    Lesson(
        slug="double-descent",
        title="Double descent: bigger networks, worse then better",
        topic="generalization",
        kind="mlp",
        spec=_DOUBLE_DESCENT["base"],
        todo=(
            "Run the sweep: 64 networks, eight widths of the hidden layer from 1 to 64 neurons, each width with"
            " eight seeds, all trained 2,000 epochs on the same 30 noisy points. Here beside it, the width-12"
            " network trains on its own: press play and watch it fit the noise."
        ),
        watch=(
            "On the sweep's page, the final test loss against the width (choose network.hidden), the seeds as a"
            " band around the mean: it climbs from 1 neuron to about 12, then falls again, and the widest"
            " networks end below the narrowest. Here, the width-12 network's test loss rising while its"
            " training loss goes to nearly zero."
        ),
        question="Why would adding neurons first hurt and then help the test error?",
        why=(
            "Classic teaching says a model that is too big overfits, so the test error against size is a U. With"
            " noisy targets, the test error rises up to the size where the network can just barely fit every"
            " training point, because then it must bend hard around each noisy one. Beyond that size there are many"
            " ways to fit the points, and training (starting from small random weights) tends to find a smooth"
            " one, so the test error falls again: a second descent. Seeing it needs dozens of networks of"
            " different widths trained the same way, which is what a sweep does."
        ),
        panels=("loss-chart", "metrics", "network"),
        variants=(
            Variant("2 neurons", {"network": {"hidden": [{"units": 2, "activation": "tanh"}]}}),
            Variant("64 neurons", {"network": {"hidden": [{"units": 64, "activation": "tanh"}]}}),
        ),
        sweep=_DOUBLE_DESCENT,
    ),
)

LESSONS: dict[str, Lesson] = {lesson.slug: lesson for lesson in _LESSONS}
