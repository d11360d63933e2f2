NAME = "1cd-augment"
DESCRIPTION = "1-cd step 3: + RandomCrop(28) and horizontal flip (CenterCrop(28) at test)"
PARENT = "1cd-standardize"
OVERRIDES = {"data.crop": 28, "data.flip": True}
