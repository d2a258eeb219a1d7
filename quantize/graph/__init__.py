"""A NIR graph made flat and checked, its shapes, its linear nodes lowered to matrices, and the per-group quantization plan."""
