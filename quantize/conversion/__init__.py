"""ANN -> SNN conversion: a trained ReLU network becomes a spiking NIR graph with balanced thresholds
(docs/seed-methods.md, "Hybrid conversion and STDB (Rathi et al. 2020)").

:func:`~spikeport.quantize.conversion.convert.convert` is the entry point (``sp.convert``);
:mod:`.layers` reads the ANN, :mod:`.snn` is the converted torch network and its NIR form,
:mod:`.onnx_reader` reads an ANN from an ONNX file.
"""
