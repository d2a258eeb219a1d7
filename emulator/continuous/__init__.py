"""Exact continuous-time simulation: SparseProp for balanced networks, exact LIF layers for discretization error."""
