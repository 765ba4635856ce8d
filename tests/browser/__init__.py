"""Helpers for the browser tests: a headless JupyterLab on loopback and Playwright in chromium."""
