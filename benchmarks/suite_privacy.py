"""Differential privacy: how far noisy figures are from the truth, and whether the reported intervals hold.

Two units, neither on the shared stacks:

* **Relative error** at 100, 1,000 and 10,000 persons per trust (three trusts, default settings:
  epsilon 1 per query, numeric bounds 10..70 for a BMI-like column). The trusts' real release code
  (``plan_noise``, ``noisy_cohort_figures``, ``noisy_numeric``) noises exact figures, and the hub's real
  pooling turns them into pooled figures with 95 % margins, many times over. Reported: the median and
  95th percentile of the relative error of the pooled person count and mean, and how often the truth lay
  inside the reported interval (coverage). The SQL is left out on purpose: it is exact, and what is
  measured here is the noise.
* **Eunomia**: a three-trust dp federation of the OHDSI Eunomia GiBleed shards, the four reference
  cohorts (479 GI bleed, 1,844 celecoxib, 850 diclofenac, 2,694 persons) submitted as a researcher would,
  and whether each reference count lies inside the interval the hub reports.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from statistics import median
from typing import Any

from benchmarks.config import Config
from benchmarks.stacks import Stack
from benchmarks.stats import percentile
from benchmarks.suite import Context, Plan, Row, Unit

NAME = "privacy"
SIZES = (100, 1_000, 10_000)
TRUSTS = 3
BOUNDS = (10.0, 70.0)


def _error_run(ctx: Context, _stack: Stack | None) -> Row:
    from hub_broker.numeric_pooling import pool_numeric
    from hub_broker.pooling import pool_released
    from omop.differential_privacy import MECHANISM, cohort_groups, numeric_groups, plan_noise
    from omop.protocol import PrivacyStatement, TrustResult
    from omop.states import ColumnStatus, PrivacyMode, ResultStatus
    from trust_worker.noisy_release import noisy_cohort_figures, noisy_numeric

    draws = ctx.config.privacy_draws
    rng = random.Random(7)  # noqa: S311 - the simulated data only; the noise is OpenDP's
    lower, upper = BOUNDS
    mid = (lower + upper) / 2
    rows = []
    for n in SIZES:
        values = [[min(max(rng.gauss(27.5, 5.5), lower), upper) for _ in range(n)] for _ in range(TRUSTS)]
        true_mean = sum(sum(v) for v in values) / (n * TRUSTS)
        count_err, mean_err = [], []
        count_inside = mean_inside = 0
        for _ in range(draws):
            results, numerics, statements = [], [], []
            for t, vals in enumerate(values):
                plan = plan_noise(1.0, cohort_groups(1, 10) + numeric_groups("bmi", lower, upper, False))
                figures = noisy_cohort_figures(
                    plan,
                    person_count=n,
                    row_count=n,
                    columns={"bmi": [n, 0]},
                    sex={"Male": n // 2, "Female": n - n // 2},
                    age={"40-49": n},
                    threshold=10,
                )
                statement = PrivacyStatement(
                    mode=PrivacyMode.DP,
                    mechanism=MECHANISM,
                    epsilon=1.0,
                    scales=plan.scales,
                    bounds={"bmi": BOUNDS},
                )
                if figures["status"] == ResultStatus.RELEASED:
                    raw = {
                        "cohort_persons": n,
                        "columns": {
                            "bmi": {
                                "persons": n,
                                "sum": sum(v - mid for v in vals),
                                "sumsq": sum((v - mid) ** 2 for v in vals),
                            }
                        },
                    }
                    figures["numeric"] = noisy_numeric(plan, raw, {"bmi": BOUNDS}, {}, 10)
                result = TrustResult(
                    query_id="bench",
                    trust_id=f"t{t + 1}",
                    threshold=10,
                    produced_at=datetime.now(UTC),
                    privacy=statement,
                    **figures,
                ).model_dump(mode="json")
                results.append(result)
                if result["status"] == ResultStatus.RELEASED:
                    numerics.append(result["numeric"])
                    statements.append(result["privacy"])
            pooled = pool_released(results, 10)
            total = n * TRUSTS
            if pooled["person_count"] is not None:
                count_err.append(abs(pooled["person_count"] - total) / total)
                count_inside += abs(pooled["person_count"] - total) <= pooled["margins"]["person_count"]
            bmi = pool_numeric(numerics, 10, None, statements).get("bmi") or {}
            if bmi.get("status") == ColumnStatus.RELEASED:
                mean_err.append(abs(bmi["mean"] - true_mean) / true_mean)
                mean_inside += abs(bmi["mean"] - true_mean) <= bmi["mean_margin"]
        rows.append(
            {
                "persons_per_trust": n,
                "trusts": TRUSTS,
                "draws": draws,
                "count_rel_error_median": median(count_err),
                "count_rel_error_p95": percentile(count_err, 95),
                "count_coverage": count_inside / max(1, len(count_err)),
                "mean_rel_error_median": median(mean_err) if mean_err else None,
                "mean_rel_error_p95": percentile(mean_err, 95) if mean_err else None,
                "mean_coverage": mean_inside / max(1, len(mean_err)),
                "mean_released": len(mean_err) / draws,
            }
        )
    return {"unit": "error", "sizes": rows}


EUNOMIA_REFERENCE = (
    (
        "GI bleed (192671)",
        "SELECT person_id FROM condition_occurrence WHERE condition_concept_id = 192671",
        479,
    ),
    ("celecoxib users", "celecoxib", 1844),
    ("diclofenac users", "diclofenac", 850),
    ("all persons", "SELECT person_id FROM person", 2694),
)


def _exposed(concept: int) -> str:
    return (
        "SELECT d.person_id FROM drug_exposure d JOIN concept_ancestor a "
        f"ON a.descendant_concept_id = d.drug_concept_id WHERE a.ancestor_concept_id = {concept}"
    )


def _eunomia_run(ctx: Context, _stack: Stack | None) -> Row:
    from hub_broker.report import query_report
    from hub_broker.settings import HubSettings
    from hub_broker.store import HubStore
    from hub_broker.submit import submit, wait_for
    from omop.settings import load
    from omop.states import PrivacyMode
    from omopfed import stack as stack_mod
    from trust_worker import concepts

    directory = ctx.workdir / "privacy-eunomia"
    state = stack_mod.up(directory, trusts=3, eunomia=True, privacy=PrivacyMode.DP)
    rows = []
    try:
        settings = load(
            HubSettings,
            broker_url=state.hub_redis_url,
            hub_store_url=state.hub_store_url,
            hub_keys_dir=state.hub_keys_dir,
        )
        store = HubStore(settings.hub_store_url)
        named = {"celecoxib": _exposed(concepts.CELECOXIB), "diclofenac": _exposed(concepts.DICLOFENAC)}
        for number, (label, sql, reference) in enumerate(EUNOMIA_REFERENCE):
            sub = submit(
                settings, store, sql=named.get(sql, sql), timeout_s=60, project_id=f"bench-eunomia-{number}"
            )
            report = query_report(wait_for(store, sub.query_id))
            fed = report["federated"]
            count, margin = fed["person_count"], (fed.get("margins") or {}).get("person_count")
            rows.append(
                {
                    "cohort": label,
                    "reference": reference,
                    "reported": count,
                    "margin": margin,
                    "inside": count is not None and margin is not None and abs(count - reference) <= margin,
                }
            )
    finally:
        stack_mod.down(state)
    return {"unit": "eunomia", "cohorts": rows}


def plan(config: Config) -> Plan:
    return Plan(
        [
            Unit(NAME, "noise: relative error and interval coverage", None, _error_run),
            Unit(NAME, "Eunomia reference counts inside the reported intervals", None, _eunomia_run),
        ]
    )


def summarize(config: Config, rows: list[Row]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for row in rows:
        out[row["unit"]] = row
    return out
