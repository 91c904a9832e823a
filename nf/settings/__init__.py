"""The sections of the NF's configuration, grouped by concern; ``nf.config.Settings``
puts them together. Pure data and validation: no I/O, no imports from the rest of ``nf``."""
