NAME = "1e-vit-mnist-testsplit"
DESCRIPTION = "1-e: the course ViT on MNIST's test split alone (8,000 train / 2,000 held out)"
PARENT = "1e-vit-mnist"
# 8,000 images overfit the course recipe at about 93%: small shifts and rotations and a
# cosine schedule (same architecture) bring it past 95%.
OVERRIDES = {
    "data.test_only": True,
    "data.holdout": 2000,
    "data.pad": 2,
    "data.crop": 28,
    "data.rotate": 10,
    "optim.lr": 0.002,
    "schedule.name": "cosine",
    "train.epochs": 40,
}
