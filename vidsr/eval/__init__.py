"""Evaluation: the benchmark protocol (MATLAB-compatible resize, PSNR/SSIM on Y), model
evaluation over image sets and video, and side-by-side comparison images."""
