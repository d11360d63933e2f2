NAME = "1ab-mnist"
DESCRIPTION = "1-ab: the MLP (tanh, 100 hidden) on flattened MNIST, SGD 0.03, batch 100"
PARENT = "1ab-circles"
OVERRIDES = {
    "data.name": "mnist",
    "data.normalize": "standardize",
    "model.hidden": 100,
    "model.init_std": None,  # N(0, 0.3) saturates tanh on 784 inputs; torch's init does not
    "train.batch_size": 100,
    "train.loss_reduction": "mean",  # summed over 100 examples, lr 0.03 would be 3
    "train.epochs": 10,
}
