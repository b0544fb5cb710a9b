"""Evaluation on people: the closed loop (perceive -> policy -> twin -> re-perceive), the oracle that
searches the twin for the best reachable face, the error metrics, and contact sheets."""
