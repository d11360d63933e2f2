NAME = "mlp-fashion"
DESCRIPTION = "A one-hidden-layer MLP (256 ReLU units) on Fashion-MNIST, SGD with momentum"
OVERRIDES = {
    "data.name": "fashion-mnist",
    "model.name": "mlp",
    "model.hidden": 256,
    "model.activation": "relu",
    "optim.name": "sgd",
    "optim.lr": 0.05,
    "optim.momentum": 0.9,
    "train.batch_size": 128,
    "train.epochs": 10,
}
