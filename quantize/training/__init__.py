"""spikeport's trainable torch neurons, stepping exactly as the float reference run."""
