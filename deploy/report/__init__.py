"""Reports: float vs fixed comparison, energy reports, plots, the HTML page, the SANA-FE cross-check."""
