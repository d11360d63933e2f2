NAME = "1ab-circles-manual"
DESCRIPTION = "1-ab: the 2-layer tanh MLP on circles, variant 'manual' (course defaults)"
PARENT = "1ab-circles"
OVERRIDES = {"model.variant": "manual"}
