NAME = "1cd-baseline"
DESCRIPTION = "1-cd step 1: the course CNN on CIFAR-10, plain SGD lr 0.1, batch 128, [0,1] pixels"
OVERRIDES = {
    "data.name": "cifar10",
    "data.normalize": "none",
    "model.name": "cnn",
    "model.activation": "relu",
    "optim.name": "sgd",
    "optim.lr": 0.1,
    "optim.momentum": 0.0,
    "train.batch_size": 128,
    "train.epochs": 30,
}
