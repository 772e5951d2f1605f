"""`billing dashboard`: the local web page over the window aggregates."""
