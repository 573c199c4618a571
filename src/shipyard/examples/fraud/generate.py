"""Deterministic synthetic card transactions for the fraud demo.

`generate` writes four Parquet files: ``transactions``, ``customer_stats`` (hourly; every 2+
hours when that would exceed ~2 M rows, e.g. every 2 hours at the defaults), ``merchant_stats``
(daily) and ``labels`` (the training entity frame, one row per transaction).
Feature windows are half-open, ``(snapshot - width, snapshot]``, and computed only from rows
in the files, so the first 7 days are a warm-up in which 7-day windows hold partial history.
About 0.5 % of ``customer_stats`` rows are written twice: a first version that missed late
transactions, then a backfill correction with the honest values and a later ``created_at``.

Distribution shift in the last 14 days before ``end``. Shifted on purpose:

* ``amount`` (transactions, labels): customers of one segment (~60 %) spend ~50 % more and
  the merchant mix moves to high-ticket categories (mean amount ~1.5x); hence also
  customer_stats ``amount_mean_7d``, ``amount_std_7d`` and ``amount_sum_24h`` (the last one
  moves as much in mean, but its many small-count windows make binned measures like PSI weak).
* the merchant mix (``merchant_id``, ``category``): electronics, gaming and travel gain
  share, and a few merchants that had no sales before open.
* ``is_fraud``: the fraud share about doubles (~1.2 % to ~2.4 %).

Deliberately NOT shifted: customer_stats ``txn_count_24h`` and ``distinct_merchants_7d``
(volume and shopping habits stay the same) and the hour of day of legitimate transactions.
merchant_stats 30-day aggregates follow the shift only partly and late: poor drift targets.
"""

from __future__ import annotations

import argparse
import math
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

HOUR, DAY = 3_600, 86_400
SHIFT_DAYS = 14
MAX_LABEL_DAYS = 10  # below the 30-day merchant window: `_merchant_stats` relies on it
MAX_SNAPSHOT_ROWS = 2_000_000  # snapshot less often than hourly beyond this many candidates
HOME_MERCHANTS, P_HOME = 6, 0.75  # people mostly shop at a few regular places
FRAUD_SHARE, FRAUD_SHARE_SHIFTED, MEAN_BURST = 0.012, 0.024, 3.0
SEGMENT_SHARE, SEGMENT_UPLIFT = 0.6, 1.5  # strong enough to move 7-day means clearly
NEW_MERCHANT_SHARE = 0.05

# category: (share of merchants, amount multiplier, popularity factor in the shift window)
CATEGORIES = {
    "grocery": (0.22, 1.0, 0.4),
    "restaurants": (0.18, 0.8, 0.5),
    "fuel": (0.10, 1.3, 0.5),
    "pharmacy": (0.08, 0.7, 0.6),
    "fashion": (0.12, 2.0, 1.0),
    "online_services": (0.10, 0.6, 1.0),
    "gaming": (0.08, 1.5, 5.0),
    "electronics": (0.07, 4.0, 5.0),
    "travel": (0.05, 6.0, 4.0),
}
RISKY_CATEGORIES = ("gaming", "electronics", "online_services")
# Relative activity per UTC hour: quiet nights, busy afternoons and evenings.
HOURLY = np.array([0.20, 0.12, 0.08, 0.06, 0.06, 0.10, 0.30, 0.60, 0.90, 1.00, 1.10, 1.30,
                   1.50, 1.40, 1.30, 1.30, 1.40, 1.60, 1.80, 1.90, 1.70, 1.30, 0.80, 0.40])
# Fraudsters prefer the hours when cardholders sleep.
FRAUD_HOURLY = np.array([1.6, 2.0, 2.2, 2.2, 2.0, 1.5, 1.0, 0.7, 0.6, 0.6, 0.6, 0.6,
                         0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.7, 0.7, 0.8, 0.9, 1.1, 1.3])

Arrays = dict[str, np.ndarray]


def _customers(rng: np.random.Generator, n: int, merchants: Arrays) -> Arrays:
    """Per-customer spending habits: rate, lognormal amount scale, segment, home merchants."""
    regular = merchants["pop_before"] / merchants["pop_before"].sum()
    return {
        "rate": rng.gamma(2.0, 0.8, n) + 0.05,  # transactions per day, mean ~1.65
        "mu": rng.normal(3.1, 0.5, n),  # log-amount location: median spend ~$22
        "sigma": rng.uniform(0.35, 0.9, n),  # customer-specific spread of the heavy tail
        "segment": rng.random(n) < SEGMENT_SHARE,  # spends more in the shift window
        "home": rng.choice(len(regular), (n, HOME_MERCHANTS), p=regular),
    }


def _merchants(rng: np.random.Generator, n: int) -> Arrays:
    """Merchant category, popularity before/after the shift, and a few risky merchants."""
    share, mult, boost = (np.array(v) for v in zip(*CATEGORIES.values(), strict=True))
    cat = rng.choice(len(share), n, p=share / share.sum())
    pop = rng.lognormal(0.0, 1.0, n)
    new = np.zeros(n, bool)  # merchants that open with the shift; merchant 0 is always old
    new[rng.choice(np.arange(1, n), min(n - 1, max(1, round(NEW_MERCHANT_SHARE * n))),
                   replace=False)] = True
    names = np.array(list(CATEGORIES))
    lure = np.where(np.isin(names[cat], RISKY_CATEGORIES), 5.0, 1.0) * ~new
    risky = rng.choice(n, min(max(3, n // 40), int((~new).sum())), replace=False,
                       p=lure / lure.sum())
    return {
        "category": names[cat], "mult": mult[cat], "risky": np.sort(risky),
        "pop_before": np.where(new, 0.0, pop),
        "pop_after": pop * boost[cat] * np.where(new, 4.0, 1.0),  # new shops advertise
    }


def _explore(rng: np.random.Generator, merchants: Arrays, shifted: np.ndarray) -> np.ndarray:
    """Occasional merchants, by popularity: the mix changes in the shift window."""
    before, after = (rng.choice(len(w), len(shifted), p=w / w.sum())
                     for w in (merchants["pop_before"], merchants["pop_after"]))
    return np.where(shifted, after, before)


def _times(rng: np.random.Generator, day_lo: int, day_hi: int, hourly: np.ndarray,
           n: int) -> np.ndarray:
    """n seconds since start, uniform over [day_lo, day_hi) days with an hour-of-day profile."""
    hour = rng.choice(24, n, p=hourly / hourly.sum())
    return rng.integers(day_lo, day_hi, n) * DAY + hour * HOUR + rng.integers(0, HOUR, n)


def _legit(rng: np.random.Generator, cust: Arrays, merch: Arrays, days: int,
           shift_start: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Everyday spending: a Poisson number per customer, mostly at their home merchants."""
    cid = np.repeat(np.arange(len(cust["rate"])), rng.poisson(cust["rate"] * days))
    t = _times(rng, 0, days, HOURLY, len(cid))
    home = cust["home"][cid, rng.integers(0, HOME_MERCHANTS, len(cid))]
    explore = _explore(rng, merch, t >= shift_start * DAY)
    return cid, t, np.where(rng.random(len(cid)) < P_HOME, home, explore)


def _fraud(rng: np.random.Generator, n_cust: int, merch: Arrays, days: int, shift_start: int,
           per_day: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stolen cards: bursts of purchases minutes apart, mostly at night and at risky shops."""
    expected = np.array([FRAUD_SHARE * shift_start, FRAUD_SHARE_SHIFTED * (days - shift_start)])
    n_ep = rng.poisson(expected * per_day / MEAN_BURST)
    start = np.concatenate([_times(rng, 0, shift_start, FRAUD_HOURLY, n_ep[0]),
                            _times(rng, shift_start, days, FRAUD_HOURLY, n_ep[1])])
    size = 1 + rng.poisson(MEAN_BURST - 1, len(start))
    ep = np.repeat(np.arange(len(start)), size)
    gaps = np.cumsum(rng.exponential(600.0, len(ep)))  # ~10 minutes between purchases
    t = start[ep] + (gaps - gaps[np.repeat(np.cumsum(size) - size, size)]).astype(np.int64)
    risky = merch["risky"][rng.integers(0, len(merch["risky"]), len(ep))]
    mid = np.where(rng.random(len(ep)) < 0.6, risky, _explore(rng, merch, t >= shift_start * DAY))
    return rng.integers(0, n_cust, len(start))[ep], t, mid


def _transactions(rng: np.random.Generator, cust: Arrays, merch: Arrays, days: int) -> Arrays:
    """Legitimate spending plus fraud, sorted by time; times are seconds since start."""
    shift_start = max(days - SHIFT_DAYS, 0)
    legit = _legit(rng, cust, merch, days, shift_start)
    fraud = _fraud(rng, len(cust["rate"]), merch, days, shift_start, len(legit[0]) / days)
    cid, t, mid = (np.concatenate(pair) for pair in zip(legit, fraud, strict=True))
    is_fraud = np.repeat(np.array([0, 1]), [len(legit[0]), len(fraud[0])])
    # Amount: customer lognormal x merchant category x fraud premium x uplift after the shift.
    amount = np.exp(cust["mu"][cid] + cust["sigma"][cid] * rng.standard_normal(len(cid)))
    amount *= merch["mult"][mid] * np.where(is_fraud == 1, rng.lognormal(1.0, 0.4, len(cid)), 1)
    amount *= np.where(cust["segment"][cid] & (t >= shift_start * DAY), SEGMENT_UPLIFT, 1.0)
    # Chargebacks take 1-10 days; a clean transaction is confirmed after 2-5 days.
    delay = np.where(is_fraud == 1, rng.uniform(1, MAX_LABEL_DAYS, len(cid)),
                     rng.uniform(2, 5, len(cid)))
    cols = {"customer_id": cid, "merchant_id": mid, "amount": np.round(amount, 2).clip(0.5),
            "t": t, "is_fraud": is_fraud, "label_t": t + (delay * DAY).astype(np.int64)}
    keep = t < days * DAY  # a late-night burst may run past `end`
    order = np.lexsort((cid[keep], t[keep]))
    out = {k: v[keep][order] for k, v in cols.items()}
    out["txn_id"] = np.arange(1, len(order) + 1)
    return out


def _upto(group: np.ndarray, time: np.ndarray, values: np.ndarray, q_group: np.ndarray,
          q_time: np.ndarray) -> np.ndarray:
    """For each query, sum the `values` rows of its group with time <= q_time (vectorised)."""
    span = int(max(time.max(initial=0), q_time.max(initial=0))) + 2
    order = np.lexsort((time, group))
    keys = group[order] * span + time[order]  # one sorted axis: group, then time
    csum = np.vstack([np.zeros((1, values.shape[1])), np.cumsum(values[order], axis=0)])
    base = np.searchsorted(keys, q_group * span, side="left")
    hi = np.searchsorted(keys, q_group * span + np.maximum(q_time, -1), side="right")
    return csum[hi] - csum[base]


def _window(group: np.ndarray, time: np.ndarray, values: np.ndarray, width: int,
            q_group: np.ndarray, q_time: np.ndarray) -> np.ndarray:
    """Sums of `values` over rows of the query's group with q_time - width < time <= q_time."""
    return (_upto(group, time, values, q_group, q_time)
            - _upto(group, time, values, q_group, q_time - width))


def _distinct_merchants(tx: Arrays, width: int, q_group: np.ndarray,
                        q_time: np.ndarray) -> np.ndarray:
    """Distinct merchants per customer in (q_time - width, q_time].

    A merchant counts at q_time iff its latest visit at or before q_time lies in the window,
    so visit t counts for q_time in [t, min(t + width, next visit)): +1 and -1 events.
    """
    cid, mid, t = tx["customer_id"], tx["merchant_id"], tx["t"]
    order = np.lexsort((t, mid, cid))
    same_pair = (cid[order][1:] == cid[order][:-1]) & (mid[order][1:] == mid[order][:-1])
    nxt = np.r_[np.where(same_pair, t[order][1:], np.iinfo(np.int64).max), np.iinfo(np.int64).max]
    stop = np.empty_like(t)
    stop[order] = np.minimum(t[order] + width, nxt)
    ones = np.ones((len(t), 1))
    return (_upto(cid, t, ones, q_group, q_time) - _upto(cid, stop, ones, q_group, q_time))[:, 0]


def _customer_stats(rng: np.random.Generator, tx: Arrays, n_cust: int, days: int) -> Arrays:
    """Snapshots per customer at hours with activity in the last 7 days, plus corrections."""
    step = math.ceil(n_cust * days * 24 / MAX_SNAPSHOT_ROWS) * HOUR
    snaps = np.arange(step, days * DAY + 1, step)
    qc, qt = np.repeat(np.arange(n_cust), len(snaps)), np.tile(snaps, n_cust)
    cid, t, amt = tx["customer_id"], tx["t"], tx["amount"]
    w7 = _window(cid, t, np.c_[np.ones(len(t)), amt, amt**2], 7 * DAY, qc, qt)
    active = w7[:, 0] > 0
    qc, qt, (n7, s7, ss7) = qc[active], qt[active], w7[active].T
    w24 = _window(cid, t, np.c_[np.ones(len(t)), amt], DAY, qc, qt)
    with np.errstate(invalid="ignore", divide="ignore"):
        var = np.clip((ss7 - s7**2 / n7) / (n7 - 1), 0.0, None)
    out = {
        "customer_id": qc, "t": qt,
        "created_t": qt + rng.integers(5 * 60, 50 * 60 + 1, len(qt)),  # pipeline delay
        "txn_count_24h": np.rint(w24[:, 0]).astype(np.int64),
        "amount_sum_24h": np.round(w24[:, 1], 2),
        "amount_mean_7d": np.round(s7 / n7, 4),
        "amount_std_7d": np.where(n7 >= 2, np.round(np.sqrt(var), 4), np.nan),
        "distinct_merchants_7d": _distinct_merchants(tx, 7 * DAY, qc, qt).astype(np.int64),
    }
    return _with_corrections(rng, out)


def _with_corrections(rng: np.random.Generator, stats: Arrays) -> Arrays:
    """Spoil ~0.5 % of rows (a run that missed late data) and append honest later rewrites."""
    fix = np.flatnonzero(rng.random(len(stats["t"])) < 0.005)
    honest = {k: v[fix].copy() for k, v in stats.items()}
    honest["created_t"] += rng.integers(2 * HOUR, 48 * HOUR, len(fix))
    stats["txn_count_24h"][fix] = np.maximum(honest["txn_count_24h"] - 1, 0)
    for name, lo, hi in [("amount_sum_24h", 0.85, 0.99), ("amount_mean_7d", 0.95, 1.05),
                         ("amount_std_7d", 0.95, 1.05)]:
        stats[name][fix] = np.round(honest[name] * rng.uniform(lo, hi, len(fix)), 4)
    both = {k: np.concatenate([stats[k], honest[k]]) for k in stats}
    order = np.lexsort((both["created_t"], both["customer_id"], both["t"]))
    return {k: v[order] for k, v in both.items()}


def _merchant_stats(rng: np.random.Generator, tx: Arrays, merch: Arrays, days: int) -> Arrays:
    """Daily snapshots per open merchant; fraud rate only from labels known by then."""
    n = len(merch["category"])
    qm, qt = np.repeat(np.arange(n), days), np.tile(np.arange(1, days + 1) * DAY, n)
    mid, t, fraud = tx["merchant_id"], tx["t"], tx["is_fraud"].astype(float)
    ones = np.ones(len(t))
    n24 = _window(mid, t, ones[:, None], DAY, qm, qt)[:, 0]
    w30 = _window(mid, t, np.c_[ones, tx["amount"]], 30 * DAY, qm, qt)
    # Labelled in (s - 30d, s]: labels known by s, minus rows older than the window, whose
    # labels (at most MAX_LABEL_DAYS late) are all known by s as well.
    known = (_upto(mid, tx["label_t"], np.c_[ones, fraud], qm, qt)
             - _upto(mid, t, np.c_[ones, fraud], qm, qt - 30 * DAY))
    opened = _upto(mid, t, ones[:, None], qm, qt)[:, 0] > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        rate, mean = known[:, 1] / known[:, 0], np.round(w30[:, 1] / w30[:, 0], 4)
    return {
        "merchant_id": qm[opened], "t": qt[opened],
        "created_t": qt[opened] + rng.integers(30 * 60, 120 * 60 + 1, int(opened.sum())),
        "txn_count_24h": np.rint(n24[opened]).astype(np.int64),
        "fraud_rate_30d": np.round(rate[opened], 6), "amount_mean_30d": mean[opened],
        "category": merch["category"][qm[opened]],
    }


def _write(path: Path, cols: Arrays, start: int) -> Path:
    """Write columns as Parquet: *_t seconds become UTC timestamps, NaN floats become null."""
    names = {"t": "event_timestamp", "created_t": "created_at", "label_t": "label_timestamp"}
    arrays = {}
    for key, col in cols.items():
        if key in names:
            arrays[names[key]] = pa.array((col + start) * 1_000_000, pa.timestamp("us", tz="UTC"))
        elif col.dtype.kind == "f":
            arrays[key] = pa.array(col, pa.float64(), mask=np.isnan(col))
        elif col.dtype.kind in "biu":
            arrays[key] = pa.array(col, pa.int64())
        else:
            arrays[key] = pa.array(col.tolist(), pa.string())
    pq.write_table(pa.table(arrays), path)
    return path


def generate(out_dir: str | Path, *, customers: int = 2_000, merchants: int = 200, days: int = 60,
             end: datetime = datetime(2026, 11, 1, tzinfo=timezone.utc),  # noqa: UP017
             seed: int = 7) -> dict[str, Path]:
    """Write the fraud demo's Parquet files into out_dir and return their paths by name."""
    if end.tzinfo is None:
        end = end.replace(tzinfo=timezone.utc)  # noqa: UP017 - naive means UTC, as in Shipyard
    start = int(end.timestamp()) - days * DAY
    rng = np.random.default_rng(seed)
    merch = _merchants(rng, merchants)
    cust = _customers(rng, customers, merch)
    tx = _transactions(rng, cust, merch, days)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    txn_cols = ["txn_id", "customer_id", "merchant_id", "amount", "t", "is_fraud", "label_t"]
    return {
        "transactions": _write(out / "transactions.parquet", {k: tx[k] for k in txn_cols}, start),
        "customer_stats": _write(out / "customer_stats.parquet",
                                 _customer_stats(rng, tx, customers, days), start),
        "merchant_stats": _write(out / "merchant_stats.parquet",
                                 _merchant_stats(rng, tx, merch, days), start),
        "labels": _write(out / "labels.parquet", {k: tx[k] for k in txn_cols[1:]}, start),
    }


def main(argv: list[str] | None = None) -> None:
    """Command line: write the fraud demo data into a directory."""
    parser = argparse.ArgumentParser(description="Generate the Shipyard fraud demo data.")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--customers", type=int, default=2_000)
    parser.add_argument("--merchants", type=int, default=200)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    generate(args.out_dir, customers=args.customers, merchants=args.merchants, days=args.days,
             seed=args.seed)


if __name__ == "__main__":
    main()
