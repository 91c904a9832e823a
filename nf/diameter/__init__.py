"""4G Diameter (Gy, Gx, Sy) for host networks' PGWs and PCRFs: a transport, like ``nf.sbi``.

It translates Diameter messages into the calls the SBI makes on the same services (the
CHF's ``ChargingService``, the PCF, the spending-limit control) and their results back, so a
subscriber has one balance, one decision and one kind of EDR whichever interface asked. It
never holds money or policy state of its own.
"""
