"""The pipeline: applier, state, coordination, bursts, mass removal, replay, decisions."""
