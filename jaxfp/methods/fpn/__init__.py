"""FPN (Tae et al., JAMET 2020): a radio-map encoding network and a two-layer LSTM positioning
network over walks, re-adapted to a changed radio map by brief fine-tuning."""
