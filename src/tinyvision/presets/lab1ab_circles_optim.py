NAME = "1ab-circles-optim"
DESCRIPTION = "1-ab: the 2-layer tanh MLP on circles, variant 'optim' (course defaults)"
PARENT = "1ab-circles"
OVERRIDES = {"model.variant": "optim"}
