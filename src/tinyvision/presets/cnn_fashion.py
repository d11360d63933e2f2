NAME = "cnn-fashion"
DESCRIPTION = "The course CNN (conv 32-64-64, fc 1000) on 1x28x28 Fashion-MNIST, SGD momentum"
OVERRIDES = {
    "data.name": "fashion-mnist",
    "model.name": "cnn",
    "optim.name": "sgd",
    "optim.lr": 0.05,
    "optim.momentum": 0.9,
    "train.batch_size": 128,
    "train.epochs": 10,
}
