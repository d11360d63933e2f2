NAME = "1e-vit-fashion"
DESCRIPTION = "1-e: the course ViT on Fashion-MNIST"
PARENT = "1e-vit-mnist"
OVERRIDES = {"data.name": "fashion-mnist"}
