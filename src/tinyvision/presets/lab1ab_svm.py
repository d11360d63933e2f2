NAME = "1ab-svm"
DESCRIPTION = "1-ab bonus: SVMs (linear, poly, RBF, sigmoid, LinearSVC; a C sweep) beside the MLP"
PARENT = "1ab-circles-optim"
OVERRIDES = {"task": "svm"}
