"""The load benchmark (``make bench`` / ``python -m bench``): several SMFs over HTTP/2
against the NF's CHF and PCF, the h2load ceiling of the same server, CPU and database
accounting, a profile, and the report (see BENCHMARKS.md).

It owns only the benchmark: it starts its own database and ``nf serve``, talks to them over
the network like any SMF, and never imports the NF's services into its measurements. It
must never send traffic anywhere but the loopback address, and every run stops by itself.
"""
