NAME = "1cd-lenet-mnist"
DESCRIPTION = "1-cd start: LeNet-5 (tanh, conv 6-16, fc 120-84) on MNIST, SGD 0.1, batch 128"
OVERRIDES = {
    "data.name": "mnist",
    "data.normalize": "none",
    "model.name": "lenet",
    "model.activation": "tanh",
    "optim.name": "sgd",
    "optim.lr": 0.1,
    "train.batch_size": 128,
    "train.epochs": 10,
}
