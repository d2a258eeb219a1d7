"""The emulator's engines: the run() dispatcher, the dense time-stepped engine (numpy and compiled), the event-driven engine."""
