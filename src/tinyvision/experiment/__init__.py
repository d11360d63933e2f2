"""One experiment: prepared and checked, run into its folder, recorded in the index, resumed."""
