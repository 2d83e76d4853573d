"""Layer: entry points (CLI). `python -m leads`: thin commands over the management API and the composition root;
nothing imports them."""
