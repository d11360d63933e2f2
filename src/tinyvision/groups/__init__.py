"""Groups of runs: sweeps, studies and searches, run here or on a Ray cluster."""
