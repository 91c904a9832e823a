"""Who is calling the SBI (and the care API on OAM), and what they may touch.

- ``tokens``: OAuth2 access-token verification (TS 33.501 13.4.1, TS 29.510
  AccessTokenClaims): signature against the NRF's JWKS, ``exp``, ``iss``, ``aud`` and the
  service name in ``scope``. Pure: keys and time are arguments.
- ``keys``: where the JWKS comes from (a file, or a URL refreshed in the background).
- ``caller``: the calling host network (from the token), and the checks the HTTP layer
  runs with it: a body naming another network's PLMN, a resource created by another
  network, a notification target outside the network's allow-list.
- ``part``: the SBI hook that authenticates every request of the 3GPP services.
- ``webhooks``: the HMAC signature (with a timestamp against replay) on every webhook the
  NF sends a brand: subscriber notices and fraud cases alike.
- ``apikeys``: the care API's keys (``Settings.api_keys``): how they are given and how a
  presented key is checked (digests, constant time).

It never reads charging or policy state itself: the slices tell it who owns a resource.
"""
