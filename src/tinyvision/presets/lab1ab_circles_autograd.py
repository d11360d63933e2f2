NAME = "1ab-circles-autograd"
DESCRIPTION = "1-ab: the 2-layer tanh MLP on circles, variant 'autograd' (course defaults)"
PARENT = "1ab-circles"
OVERRIDES = {"model.variant": "autograd"}
