NAME = "1e-timm-scratch"
DESCRIPTION = "1-e: timm's vit_small_patch16_224 from scratch on MNIST (img_size=28, in_chans=1)"
PARENT = "1e-vit-mnist"
OVERRIDES = {
    "model.name": "timm:vit_small_patch16_224",
    "model.timm_input": "native",
    "optim.lr": 0.0001,  # a 22M-parameter transformer: Adam 1e-3 is unstable from scratch
    "train.epochs": 5,
}
