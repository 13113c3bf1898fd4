"""``omopfed demo``: a federation on this machine, four illustrative questions, then everything stopped.

The trusts are deliberately unequal in size so the third question shows a small trust suppressing its
answer while the others release theirs (in dp mode, the default, whether it does depends on the noise).
The fourth is Flower's six-feature job, whose SQL ships in the package
(``omopfed/examples/flower-six-features.sql``) and is read with ``importlib.resources``, so the demo runs
from a wheel or the Docker image as well as from a checkout.
"""

from __future__ import annotations

import time
from importlib.resources import files
from pathlib import Path

from rich.console import Console
from rich.rule import Rule

from hub_broker.display import render_report
from hub_broker.report import query_report
from hub_broker.settings import HubSettings
from hub_broker.store import HubStore
from hub_broker.submit import submit, wait_for
from omop.numeric_spec import NumericRequest
from omop.settings import load
from omopfed import stack as stack_mod
from trust_worker.concepts import CT_SPLEEN, GI_BLEED

#: The example queries and policy, shipped inside the package (the only copy).
EXAMPLES = files("omopfed") / "examples"
FLOWER_SQL = (EXAMPLES / "flower-six-features.sql").read_text(encoding="utf-8")

QUERIES: tuple[tuple[str, str, NumericRequest | None], ...] = (
    (
        "FLIP worked example: persons with a CT Spleen procedure and their imaging studies",
        f"""SELECT p.person_id, io.accession_id, io.image_occurrence_date
FROM person p
JOIN procedure_occurrence pr ON pr.person_id = p.person_id
LEFT JOIN image_occurrence io ON io.procedure_occurrence_id = pr.procedure_occurrence_id
WHERE pr.procedure_concept_id = {CT_SPLEEN}""",
        None,
    ),
    (
        "GI-bleed cohort: persons with a gastrointestinal haemorrhage diagnosis",
        f"""SELECT DISTINCT co.person_id, co.condition_start_date
FROM condition_occurrence co
WHERE co.condition_concept_id = {GI_BLEED}""",
        None,
    ),
    (
        "A narrow cohort: GI bleed in women born before 1950 (suppressed at the small trust)",
        f"""SELECT p.person_id
FROM person p
WHERE p.gender_concept_id = 8532 AND p.year_of_birth < 1950
  AND EXISTS (SELECT 1 FROM condition_occurrence co
              WHERE co.person_id = p.person_id AND co.condition_concept_id = {GI_BLEED})""",
        None,
    ),
    (
        "Flower's federated analytics job: mean and sd of six measurements, BMI and HbA1c histograms",
        FLOWER_SQL,
        NumericRequest.from_cli(
            # dp mode: each column's values are clamped to declared bounds, which calibrate the noise
            "age:0:110,bmi:10:70,systolic_bp:60:250,diastolic_bp:30:150,ldl_cholesterol:20:300,hba1c:3:15",
            ["bmi=15:45:10", "hba1c=4:10:12"],
        ),
    ),
)


def run_demo(directory: Path, *, trusts: int = 3, persons: int = 2000) -> None:
    console = Console()
    sizes = [persons] * max(trusts - 1, 1) + ([max(persons // 15, 50)] if trusts > 1 else [])
    console.print(Rule("omop-federation demo"))
    started = time.perf_counter()
    state = stack_mod.up(
        directory, trusts=trusts, persons=sizes, progress=lambda m: console.print(f"[dim]•[/] {m}")
    )
    try:
        console.print(
            f"stack ready in {time.perf_counter() - started:.1f} s "
            f"({', '.join(f'{t}: {n} persons' for t, n in zip(state.trusts, sizes, strict=True))})"
        )
        settings = load(
            HubSettings,
            broker_url=state.hub_redis_url,
            hub_store_url=state.hub_store_url,
            hub_keys_dir=state.hub_keys_dir,
        )
        store = HubStore(settings.hub_store_url)
        for title, sql, numeric in QUERIES:
            console.print(Rule(title))
            console.print(
                sql if numeric is None else "(omopfed/examples/flower-six-features.sql)",
                style="dim",
                highlight=False,
            )
            t0 = time.perf_counter()
            sub = submit(settings, store, sql=sql, timeout_s=30, project_id="demo", numeric=numeric)
            query = wait_for(store, sub.query_id)
            render_report(console, query_report(query))
            console.print(f"[dim]round trip {1000 * (time.perf_counter() - t0):.0f} ms[/]")
    finally:
        console.print(Rule())
        stack_mod.down(state, progress=lambda m: console.print(f"[dim]•[/] {m}"))
    console.print(f"demo finished in {time.perf_counter() - started:.1f} s")
