"""Policies: expression (55) -> servo commands. The networks (KAN + attention, KAN, MLP), their compiled
spline kernels and NumPy inference paths, the closed-form baselines, the list of model kinds, the one
policy loader and the ONNX export."""
