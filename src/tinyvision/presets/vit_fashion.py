NAME = "vit-fashion"
DESCRIPTION = "A strong small ViT on Fashion-MNIST: patch 4, 64-d, 4 blocks, AdamW + warmup-cosine"
PARENT = "1e-vit-fashion"
OVERRIDES = {
    "model.patch_size": 4,  # 49 patches: Fashion-MNIST's details need small patches
    "model.embed_dim": 64,
    "model.nb_blocks": 4,
    "model.num_heads": 4,
    "model.mlp_ratio": 2.0,
    "optim.name": "adamw",
    "optim.lr": 0.002,
    "optim.weight_decay": 0.05,
    "schedule.name": "warmup-cosine",
    "schedule.interval": "step",
    "schedule.warmup_epochs": 1,
    "train.label_smoothing": 0.1,
    "data.flip": True,
    "data.pad": 2,  # pad-and-crop: shifts of up to 2 pixels
    "data.crop": 28,
    "train.epochs": 12,
}
