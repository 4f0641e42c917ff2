"""The diffusion prior: noise schedules, the U-Net denoiser, the DDPM loss and sampling, training, and the
images it learns from (synthetic galaxies, real images prepared for it)."""
