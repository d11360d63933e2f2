NAME = "1ab-fashion"
DESCRIPTION = "1-ab: the same MLP on flattened Fashion-MNIST"
PARENT = "1ab-mnist"
OVERRIDES = {"data.name": "fashion-mnist", "train.epochs": 5}
