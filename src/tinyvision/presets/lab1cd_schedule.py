NAME = "1cd-schedule"
DESCRIPTION = "1-cd step 4: + SGD momentum 0.9 and ExponentialLR(0.95) per epoch"
PARENT = "1cd-augment"
# Momentum 0.9 multiplies the step by about 1 / (1 - 0.9) = 10: lr 0.01 keeps the
# baseline's effective step (0.1 with momentum diverges without batch norm).
OVERRIDES = {
    "optim.momentum": 0.9,
    "optim.lr": 0.01,
    "schedule.name": "exponential",
    "schedule.gamma": 0.95,
}
