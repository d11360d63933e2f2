NAME = "1cd-standardize"
DESCRIPTION = "1-cd step 2: + per-channel standardization fitted on the training split"
PARENT = "1cd-baseline"
OVERRIDES = {"data.normalize": "standardize"}  # data.normalize=course: the course constants
