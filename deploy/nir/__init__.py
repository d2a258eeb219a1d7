"""NIR in and out: reading and writing files with semantics, exporting torch, snnTorch and Norse models."""
