"""A 5G CHF (Nchf_ConvergedCharging) and PCF (Npcf_SMPolicyControl) for MVNOs.

Slices: ``chf`` (charging), ``pcf`` (policy), and the shared pieces they stand on:
``catalog`` (offers), ``ledger`` (balances), ``store`` (MongoDB), ``sbi`` (HTTP/2 service
plumbing), ``notify`` (persisted outbox towards SMFs), ``edr`` (event detail records) and
``oam`` (health, metrics, provisioning).
"""

__version__ = "0.1.0"
