"""spikeport.quantize: float NIR + semantics -> the emulator's integer network."""
