"""The sections of the NF's configuration, one module per concern; ``nf.config.Settings``
puts them together. Pure data and validation: no I/O, no imports from the rest of ``nf``."""
