NAME = "1e-vit-mnist"
DESCRIPTION = "1-e: the course ViT (embed 32, patch 7, 2 blocks, 4 heads, mlp 4) on MNIST"
OVERRIDES = {
    "data.name": "mnist",
    "model.name": "vit",
    "model.embed_dim": 32,
    "model.nb_blocks": 2,
    "model.patch_size": 7,
    "model.num_heads": 4,
    "model.mlp_ratio": 4.0,
    "optim.name": "adam",
    "optim.lr": 0.001,
    "train.batch_size": 128,
    "train.epochs": 10,
}
