"""Inverse problems y = H x + z under the diffusion prior: operators with an SVD, the posterior samplers,
reconstruction, analytic priors, metrics and the calibration of intervals."""
