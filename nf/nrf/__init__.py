"""Registration with an NRF (TS 29.510 Nnrf_NFManagement): one NF profile per NF type.

The NF is a CHF and a PCF at once. TS 29.510 gives an NF profile exactly one ``nfType``,
and discovery (``target-nf-type=CHF``/``PCF``) matches on it, so this NF registers **two
profiles**, each with its own ``nfInstanceId``: the CHF profile carries
``nchf-convergedcharging`` and ``nchf-spendinglimitcontrol`` and ``chfInfo``; the PCF profile
carries ``npcf-smpolicycontrol`` and ``pcfInfo``. Both point at the same SBI endpoint.

- ``profile``: the instance ids (UUIDv5 of the configured ``instance_id`` and the NF type:
  stable across restarts and identical in every worker process, with nothing to persist)
  and the NFProfile documents. Pure.
- ``core``: the registration state machine per profile (register, heartbeat at the NRF's
  ``heartBeatTimer``, re-register on 404 or after a failure with exponential backoff).
  Pure: time is an argument.
- ``part``: the worker that drives it over HTTP/2 (only in the OAM process, which runs
  once per NF instance), deregisters on a graceful stop and reports its state in
  ``/readyz`` without making readiness depend on the NRF.

The NF discovers no peers today: SMFs and PCFs give it their notification URIs, so there
is nothing to look up.
"""
