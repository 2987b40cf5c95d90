"""The ``rfm-stream`` command line (``python -m stream.cli``): the parser and the commands."""
