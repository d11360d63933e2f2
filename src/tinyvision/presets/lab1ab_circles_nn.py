NAME = "1ab-circles-nn"
DESCRIPTION = "1-ab: the 2-layer tanh MLP on circles, variant 'nn' (course defaults)"
PARENT = "1ab-circles"
OVERRIDES = {"model.variant": "nn"}
