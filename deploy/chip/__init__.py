"""Loihi 1 / Loihi 2 chip limits (with sources) and the resource map of a network onto their cores."""
