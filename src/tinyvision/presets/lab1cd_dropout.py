NAME = "1cd-dropout"
DESCRIPTION = "1-cd step 5: + dropout 0.5 between fc4 and fc5"
PARENT = "1cd-schedule"
OVERRIDES = {"model.dropout": 0.5}
