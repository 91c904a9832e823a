"""What the Diameter codec costs in CPU per message (``nf.diameter.codec`` over
python-diameter), for the Gy hot path: a CCR-U as a PGW sends it, and the CCA the NF
answers.

    PYTHONPATH=. .venv/bin/python -m bench.diameter_codec [--count 20000] [--runs 5]

Each step is timed on its own with the process's CPU clock (``time.process_time``), median
of the runs, in microseconds per message:

- decode: bytes of a CCR-U -> message (header, every AVP, grouped ones included);
- decode+read: the same, then the CCR's fields the Gy handler uses
  (``nf.diameter.gy.parse_ccr``; grouped AVPs are decoded when first read);
- answer: the CCA built (Session-Id first, MSCC with GSU, thresholds) and encoded;
- round: the three together, what one CCR costs the NF in codec work.

The NF's own work per CCR (the CHF, the ledger's database write) is not included: this is
the price of speaking Diameter instead of JSON, to set beside the SBI's body parsing.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from nf.diameter import codec
from nf.diameter.base import APP_GY
from nf.diameter.gy import Ccr, cca_avps, parse_ccr

V = codec.VENDOR_3GPP


def sample_ccr() -> bytes:
    """A CCR-U with one MSCC (USU and RSU), two Subscription-Ids and PS-Information."""
    mscc = codec.new_avp(456, [
        codec.new_avp(437, [codec.new_avp(421, 1_048_576)]),
        codec.new_avp(446, [codec.new_avp(421, 1_000_000), codec.new_avp(412, 250_000),
                            codec.new_avp(414, 750_000), codec.new_avp(872, 0, V)]),
        codec.new_avp(432, 10)])
    avps = [codec.new_avp(codec.AVP_SESSION_ID, "pgw1.northwind.example;1234;5678"),
            codec.new_avp(codec.AVP_ORIGIN_HOST, b"pgw1.northwind.example"),
            codec.new_avp(codec.AVP_ORIGIN_REALM, b"epc.mnc001.mcc001.3gppnetwork.org"),
            codec.new_avp(codec.AVP_DESTINATION_REALM, b"mvno.example"),
            codec.new_avp(codec.AVP_AUTH_APPLICATION_ID, APP_GY),
            codec.new_avp(461, "32251@3gpp.org"),
            codec.new_avp(416, 2), codec.new_avp(415, 7),
            codec.new_avp(443, [codec.new_avp(450, 1), codec.new_avp(444, "001010000000001")]),
            codec.new_avp(443, [codec.new_avp(450, 0), codec.new_avp(444, "15550000001")]),
            codec.new_avp(455, 1), mscc,
            codec.new_avp(873, [codec.new_avp(874, [codec.new_avp(18, "00101", V)], V)], V)]
    return codec.encode(codec.request(codec.CMD_CCR, APP_GY, avps, hop_by_hop=1,
                                      end_to_end=2))


ANSWER_BODY = {"invocationSequenceNumber": 7, "multipleUnitInformation": [{
    "ratingGroup": 10, "resultCode": "SUCCESS", "grantedUnit": {"totalVolume": 1_048_576},
    "validityTime": 3600, "volumeQuotaThreshold": 209_715}]}


def _answer(req: codec.Message, ccr: Ccr) -> bytes:
    rc, avps = cca_avps(ccr, ANSWER_BODY)
    return codec.encode(codec.answer(req, rc, "ocs.mvno.example", "mvno.example", avps=avps))


def per_message_us(step: Callable[[], object], count: int) -> float:
    start = time.process_time()
    for _ in range(count):
        step()
    return (time.process_time() - start) / count * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=20_000, help="messages per run")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    data = sample_ccr()
    req = codec.decode(data)
    ccr = parse_ccr(req)

    def round_trip() -> bytes:
        m = codec.decode(data)
        return _answer(m, parse_ccr(m))

    steps: dict[str, Callable[[], object]] = {
        "decode": lambda: codec.decode(data),
        "decode+read": lambda: parse_ccr(codec.decode(data)),
        "answer": lambda: _answer(req, ccr),
        "round": round_trip,
    }
    print(f"CCR-U of {len(data)} bytes, CCA of {len(_answer(req, ccr))} bytes; "
          f"{args.count} messages x {args.runs} runs, CPU time")
    for name, step in steps.items():
        runs = [per_message_us(step, args.count) for _ in range(args.runs)]
        print(f"{name:>11}: {statistics.median(runs):7.1f} us/message (runs: "
              f"{', '.join(f'{r:.1f}' for r in runs)})")


if __name__ == "__main__":
    main()
