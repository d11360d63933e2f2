"""Using a trained run: its model loaded back, predictions, the confusion matrix."""
