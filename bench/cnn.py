"""CNN training throughput: ConvNetJS's MNIST net through train_cnn_epochs, im2col vs lax.conv.

`python -m bench.cnn` prints one JSON object. Not a test: nothing here fails because the machine is slow.
"""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp

from bench.timing import best as _best
from server.ml import cnn
from server.ml.images import generate_images
from server.ml.train import hyper

# ConvNetJS's MNIST demo: 24×24 crops, conv 5×5×8 relu, pool 2/2, conv 5×5×16 relu, pool 3/3, softmax 10.
CONVNETJS_NET = cnn.CnnArch(
    (24, 24, 1),
    (
        cnn.Conv(8, 5, 1, "same", "relu"),
        cnn.Pool("max", 2, 2),
        cnn.Conv(16, 5, 1, "same", "relu"),
        cnn.Pool("max", 3, 3),
    ),
    10,
)
BATCH = 20  # ConvNetJS's batch size
N_TRAIN = 1000  # 50 steps per epoch
EPOCHS = 2  # per timed call


def samples_per_s(arch: cnn.CnnArch, conv: str, optimizer: str = "sgd") -> float:
    """Training samples per second through one compiled train_cnn_epochs call, after compiling."""
    x, y = generate_images("shapes", N_TRAIN, 0.1, seed=0, size=28)
    x = x[:, 2:26, 2:26, :]  # centre crop 28 → 24, as ConvNetJS crops MNIST
    cfg = cnn.CnnTrainConfig(arch, optimizer=optimizer, conv=conv)
    state = cnn.init_cnn_state(cfg, cnn.init_cnn(jax.random.key(0), arch), jax.random.key(1))
    batches, h = cnn.image_batches(x, y, BATCH), hyper(0.01)

    def run(epochs: int):
        jax.block_until_ready(cnn.train_cnn_epochs(cfg, state, batches, h, jnp.int32(epochs), padded=False))

    run(1)  # compile
    return EPOCHS * N_TRAIN / _best(lambda: run(EPOCHS))


def views_ms() -> tuple[float, float]:
    """A CNN session's frame (ConvNetJS's net on 28×28 shapes, 1,500 training and 500 test images): the
    views alone (every layer's feature maps of the example images, their class probabilities, all filters
    to the host), and the whole frame (plus loss, accuracy and the confusion matrix over every image)."""
    from server.engines import cnn as cx
    from server.ml import cnn_frames
    from server.presets import PRESETS
    from server.spec import ExperimentSpec

    spec = ExperimentSpec.model_validate(PRESETS["cnn-convnetjs"]["spec"])
    cfg, data = cx.config_for(spec), cx.build_data(spec)
    state, h = cx.init_train_state(spec, cfg), cx.hyper_for(spec)
    examples = data.x_test[: cx.N_EXAMPLES]

    def views():
        jax.device_get((cnn_frames.views(cfg, state.params, state.bn_state, examples), state.params))

    views()
    cx.frame_arrays(cfg, state, data, h)  # compile
    n = 20
    return (
        1000 * _best(lambda: [views() for _ in range(n)]) / n,
        1000 * _best(lambda: cx.frame_arrays(cfg, state, data, h), 5),
    )


def actmax_ms(layer: int = 2, steps: int = 20) -> float:
    """Activation maximization of every filter of ConvNetJS's second conv layer (16 filters), 20 steps."""
    from server.ml.cnn_views import maximize

    params = cnn.init_cnn(jax.random.key(0), CONVNETJS_NET)

    def run():
        jax.block_until_ready(maximize(params, None, jax.random.PRNGKey(1), CONVNETJS_NET, layer, steps=steps))

    run()  # compile
    return 1000 * _best(run, 5)


def cnn_figures() -> dict[str, float]:
    """The CNN figures of the bench, measured side by side in this process."""
    views, frame = views_ms()
    return {
        "actmax_16x20_ms": round(actmax_ms(), 1),
        "cnn_convnetjs_net_samples_per_s": round(samples_per_s(CONVNETJS_NET, "im2col")),
        "cnn_convnetjs_net_samples_per_s_lax_conv": round(samples_per_s(CONVNETJS_NET, "lax")),
        "cnn_views_ms": round(views, 2),
        "cnn_frame_ms": round(frame, 2),
    }


if __name__ == "__main__":
    print(json.dumps(cnn_figures(), indent=2))
