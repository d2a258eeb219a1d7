"""spikeport.deploy: the front door (NIR in/out, float reference, Lava backend, reports, CLI)."""
