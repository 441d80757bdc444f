"""``squall demo``: the sample function and the seed's pipelines (``examples/``), run end to end."""
