"""Ready-made experiments for lecture topics. Each spec is a partial ExperimentSpec (defaults fill the rest)."""

from __future__ import annotations

from typing import Any

ALL_FEATURES = ["x1", "x2", "x1_sq", "x2_sq", "x1x2", "sin_x1", "sin_x2"]
_POOL = {"type": "pool", "kind": "max", "size": 2}


def _conv(filters: int, kernel: int = 3) -> dict[str, Any]:
    return {"type": "conv", "filters": filters, "kernel": kernel, "padding": "same", "activation": "relu"}


def _dense(units: int) -> dict[str, Any]:
    return {"type": "dense", "units": units, "activation": "relu"}


PRESETS: dict[str, dict[str, Any]] = {
    "playground": {
        "title": "TF Playground's first screen",
        "description": "Circle data, two inputs, hidden layers of 4 and 2 tanh units, SGD at 0.03.",
        "spec": {},
    },
    "perceptron": {
        "title": "Rosenblatt's perceptron",
        "description": "One sign unit trained with the perceptron rule on two separable clouds.",
        "spec": {
            "dataset": {"name": "gauss"},
            "network": {"hidden": []},
            "training": {"algorithm": "perceptron", "learning_rate": 0.01},
        },
    },
    "xor-linear": {
        "title": "XOR without hidden layers",
        "description": "A single linear boundary cannot separate XOR: the accuracy stays low.",
        "spec": {"dataset": {"name": "xor"}, "network": {"hidden": []}},
    },
    "xor-hidden": {
        "title": "XOR with a hidden layer",
        "description": "Four tanh units bend the boundary and solve XOR.",
        "spec": {"dataset": {"name": "xor"}, "network": {"hidden": [{"units": 4, "activation": "tanh"}]}, "seed": 2},
    },
    "spiral-deep": {
        "title": "Deep net on the spiral",
        "description": "All seven features, six layers of eight tanh units, Adam.",
        "spec": {
            "dataset": {"name": "spiral"},
            "features": ALL_FEATURES,
            "network": {"hidden": [{"units": 8, "activation": "tanh"}] * 6},
            "training": {"optimizer": "adam", "learning_rate": 0.003},
        },
    },
    "softmax-blobs": {
        "title": "Three classes with softmax",
        "description": "Three Gaussian blobs, softmax output and cross-entropy.",
        "spec": {"dataset": {"name": "blobs3"}, "training": {"loss": "cross_entropy"}},
    },
    "vanishing-gradients": {
        "title": "Vanishing gradients",
        "description": "Six sigmoid layers with small initial weights: the first layers barely learn.",
        "spec": {
            "dataset": {"name": "spiral"},
            "features": ALL_FEATURES,
            "network": {"hidden": [{"units": 8, "activation": "sigmoid"}] * 6, "init": "normal"},
        },
    },
    "overfitting": {
        "title": "Overfitting",
        "description": "Few noisy training points and a big network: train loss falls, test loss rises.",
        "spec": {
            "dataset": {"name": "gauss", "n": 100, "noise": 50, "train_percent": 30},
            "features": ALL_FEATURES,
            "network": {"hidden": [{"units": 8, "activation": "relu"}] * 3, "init": "he"},
            "training": {"optimizer": "adam", "learning_rate": 0.01},
        },
    },
    "regularization": {
        "title": "L2 regularization",
        "description": "The overfitting setup with an L2 penalty: a smoother boundary, a better test loss.",
        "spec": {
            "dataset": {"name": "gauss", "n": 100, "noise": 50, "train_percent": 30},
            "features": ALL_FEATURES,
            "network": {"hidden": [{"units": 8, "activation": "relu"}] * 3, "init": "he"},
            "training": {
                "optimizer": "adam",
                "learning_rate": 0.01,
                "regularization": "l2",
                "regularization_rate": 0.01,
            },
        },
    },
    "regression-plane": {
        "title": "Regression",
        "description": "A linear output fits a tilted plane.",
        "spec": {"problem": "regression", "dataset": {"name": "plane"}},
    },
    "cnn-lenet-digits": {
        "title": "LeNet-ish on handwritten digits",
        "description": "Real 8×8 digits: conv 8, pool, conv 16, pool, dense 32, softmax over 10 digits; Adam.",
        "spec": {
            "dataset": {"name": "digits", "n": 1797, "train_percent": 80},
            "network": {"kind": "cnn", "layers": [_conv(8), _POOL, _conv(16), _POOL, _dense(32)]},
            "training": {"optimizer": "adam", "learning_rate": 0.01, "batch_size": 32},
        },
    },
    "cnn-bars-edges": {
        "title": "Edge filters from bars",
        "description": "Horizontal or vertical bars, one conv layer of four 3×3 filters: they become edge detectors.",
        "spec": {
            "dataset": {"name": "bars", "n": 600, "noise": 5, "train_percent": 70},
            "network": {"kind": "cnn", "layers": [_conv(4), {"type": "pool", "size": 4}]},
            "training": {"optimizer": "adam", "learning_rate": 0.01, "batch_size": 20},
        },
    },
    "cnn-shapes-tiny": {
        "title": "A tiny convnet on shapes",
        "description": "Circles, squares, triangles, crosses (16×16): two conv layers and max pooling.",
        "spec": {
            "dataset": {"name": "shapes", "n": 1200, "noise": 5, "train_percent": 75},
            "network": {"kind": "cnn", "layers": [_conv(8), _POOL, _conv(16), _POOL]},
            "training": {"optimizer": "adam", "learning_rate": 0.005, "batch_size": 20},
        },
    },
    "cnn-convnetjs": {
        "title": "ConvNetJS's MNIST net on shapes",
        "description": "ConvNetJS's demo net: conv 5×5×8, max pool 2, conv 5×5×16, max pool 3, softmax; 28×28 images.",
        "spec": {
            "dataset": {"name": "shapes", "n": 2000, "noise": 5, "train_percent": 75, "image_size": 28},
            "network": {
                "kind": "cnn",
                "layers": [_conv(8, 5), _POOL, _conv(16, 5), {"type": "pool", "size": 3}],
            },
            "training": {"optimizer": "adam", "learning_rate": 0.003, "batch_size": 20},
        },
    },
}
