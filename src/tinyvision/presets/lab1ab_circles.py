NAME = "1ab-circles"
DESCRIPTION = "1-ab base: 2-layer MLP (tanh, 10 hidden) on circles, N(0, 0.3) init, SGD 0.03"
OVERRIDES = {
    "data.name": "circles",
    "data.normalize": "none",  # the course feeds the raw coordinates
    "model.name": "mlp",
    "model.hidden": 10,
    "model.activation": "tanh",
    "model.init_std": 0.3,
    "model.variant": "optim",
    "optim.name": "sgd",
    "optim.lr": 0.03,
    "train.batch_size": 10,
    "train.loss_reduction": "sum",  # the hand-written backward sums over the batch
    "train.epochs": 150,
    "train.amp": "none",  # 200 points: float32 throughout, so the four variants agree
    "train.channels_last": False,
}
