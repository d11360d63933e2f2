NAME = "1e-timm-pretrained"
DESCRIPTION = "1-e: the same timm ViT fine-tuned from ImageNet weights (model.pretrained_file=...)"
PARENT = "1e-timm-scratch"
OVERRIDES = {"model.pretrained": True}
