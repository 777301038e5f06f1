"""``miaopi batch submit``: an HR department's season of graduates from one CSV file.

It talks to a running service over HTTP with the department's API key, like any client: it
uploads the file, shows a progress bar until every row is decided, and writes the results
beside the input (``FILE.results.csv``). A resent file with the same Idempotency-Key (the
file's SHA-256) is the same batch, so running the command again after a lost connection
picks up the batch already sent.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Annotated

import httpx
import typer

batch_app = typer.Typer(help="Batches of applications (graduate season).", no_args_is_help=True)


@batch_app.command("submit")
def batch_submit(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="The CSV file")],
    url: Annotated[str, typer.Option(help="The service, e.g. https://miaopi.example")],
    key: Annotated[str, typer.Option(envvar="MIAOPI_API_KEY", help="Your API key")],
    poll_s: Annotated[float, typer.Option(min=0.1, help="Seconds between progress checks")] = 1.0,
) -> None:
    """Upload FILE (UTF-8 CSV, the columns of the guide), wait, write FILE.results.csv."""
    body = file.read_bytes()
    headers = {
        "Authorization": f"Bearer {key}",
        "Idempotency-Key": "csv-" + hashlib.sha256(body).hexdigest(),
    }
    with httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=60) as http:
        sent = http.post(
            "/v1/application-batches", content=body, headers={"Content-Type": "text/csv"}
        )
        if sent.status_code != 202:
            typer.echo(f"refused ({sent.status_code}): {_detail(sent)}", err=True)
            raise typer.Exit(1)
        batch = sent.json()
        where = f"/v1/application-batches/{batch['batch_id']}"
        with typer.progressbar(length=batch["total"], label="deciding") as bar:
            shown = 0
            while True:
                batch = http.get(where).raise_for_status().json()
                bar.update(batch["done_count"] - shown)
                shown = batch["done_count"]
                if batch["status"] == "done":
                    break
                time.sleep(poll_s)
        results = http.get(f"{where}/results", headers={"Accept": "text/csv"})
        results.raise_for_status()
    out = file.with_name(file.stem + ".results.csv")
    out.write_bytes(results.content)
    counts = ", ".join(f"{n} {outcome}" for outcome, n in batch["counts"].items())
    typer.echo(f"{batch['total']} rows: {counts}; results in {out}")


def _detail(answer: httpx.Response) -> str:
    try:
        problem = answer.json()
    except ValueError:
        return answer.text[:200]
    errors = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                       for e in problem.get("errors") or [])  # fmt: skip
    return f"{problem.get('detail', '')} {errors}".strip()
