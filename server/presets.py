"""Ready-made experiments for lecture topics. Each spec is a partial ExperimentSpec (defaults fill the rest)."""

from __future__ import annotations

from typing import Any

ALL_FEATURES = ["x1", "x2", "x1_sq", "x2_sq", "x1x2", "sin_x1", "sin_x2"]

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
}
