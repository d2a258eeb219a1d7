"""Activity counters, synaptic operations (hardware and NeuroBench views) and energy per inference from cited profiles."""
