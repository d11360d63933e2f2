NAME = "1cd-batchnorm"
DESCRIPTION = "1-cd step 6: + BatchNorm2d after each convolution (the full stack)"
PARENT = "1cd-dropout"
OVERRIDES = {"model.batchnorm": True}
