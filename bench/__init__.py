"""Load generator: several SMFs over HTTP/2 against the CHF and PCF (``make bench``)."""
