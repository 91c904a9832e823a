"""The care console: server-rendered pages on the OAM port under ``/console/`` for each
brand's care agents (and the operator's overview), signed in with a care API key."""
